"""The approximate index for large catalogues: agrees with exact search, never returns a
seen item, is tuned and cached per model, and lets a re-ranking scorer plug in."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from kgrec.errors import KgrecError
from kgrec.serve.ann import ANN_DIR, ItemIndex, open_index
from kgrec.serve.bundle import Bundle, BundleMeta
from kgrec.serve.recommend import Recommender

pytest.importorskip("faiss")


def clustered_bundle(
    folder: Path,
    num_items: int = 20_000,
    num_users: int = 300,
    seed: int = 0,
    model_id: str = "m1",
) -> Bundle:
    """Items around 64 topics (norms vary like popularity), users mixing two topics, each
    user having seen 30 items, some of them among their best."""
    rng = np.random.default_rng(seed)
    dim = 32
    topics = rng.standard_normal((64, dim)).astype(np.float32)
    topic = rng.integers(0, 64, num_items)
    items = topics[topic] + 0.6 * rng.standard_normal((num_items, dim)).astype(np.float32)
    items *= rng.lognormal(0, 0.3, (num_items, 1)).astype(np.float32)
    pick = rng.integers(0, 64, (num_users, 2))
    users = (topics[pick[:, 0]] + topics[pick[:, 1]]).astype(np.float32)
    users += 0.3 * rng.standard_normal((num_users, dim)).astype(np.float32)
    seen = []
    for u in range(num_users):
        best = np.argsort(-(items @ users[u]))[:10]
        seen.append(
            np.unique(np.concatenate([best[::2], rng.choice(num_items, 25, replace=False)]))
        )
    indptr = np.zeros(num_users + 1, dtype=np.int64)
    np.cumsum([len(s) for s in seen], out=indptr[1:])
    folder.mkdir(parents=True, exist_ok=True)
    seen_indices = np.concatenate(seen).astype(np.int64)
    meta = BundleMeta(
        model_id=model_id,
        created="2026-01-01T00:00:00+00:00",
        checkpoint="",
        checkpoint_stamp=[0, 0],
        artifacts="",
        artifact_stamp=[0, 0],
        added_stamp=[0, 0],
        num_users=num_users,
        num_items=num_items,
        num_trained_items=num_items,
        num_added_items=0,
        dim=dim,
        num_seen=int(seen_indices.size),
        edge_types=[],
        kind="gnn",
    )
    return Bundle(
        user_embedding=users,
        item_embedding=items,
        seen_indptr=indptr,
        seen_indices=seen_indices,
        user_ids=[f"u{u}" for u in range(num_users)],
        item_ids=[f"i{i}" for i in range(num_items)],
        titles=[f"Item {i}" for i in range(num_items)],
        meta=meta,
        path=folder,
    )  # no scorer: scores are dot products


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return clustered_bundle(tmp_path_factory.mktemp("ann") / "serving")


@pytest.fixture(scope="module")
def index(bundle: Bundle) -> ItemIndex:
    return open_index(bundle, min_items=1_000, target_recall=0.95)  # type: ignore[return-value]


def test_index_agrees_with_exact_search_and_never_returns_seen_items(
    bundle: Bundle, index: ItemIndex
) -> None:
    meta = index.meta
    assert meta.recall >= 0.95 and meta.nprobe < meta.nlist and meta.num_items == 20_000
    exact, approximate = Recommender(bundle), Recommender(bundle, index=index)
    users = bundle.user_ids[::3]
    hits = []
    for got, want, user in zip(
        approximate.recommend_many(users, k=20),
        exact.recommend_many(users, k=20),
        users,
        strict=True,
    ):
        seen = set(bundle.seen(bundle.user_index(user)).tolist())  # type: ignore[arg-type]
        ids = [int(r.item_id[1:]) for r in got]
        assert len(ids) == 20 and not seen & set(ids)
        assert [r.rank for r in got] == list(range(1, 21))
        assert all(a.score >= b.score for a, b in itertools.pairwise(got))  # best first
        hits.append(len({r.item_id for r in got} & {r.item_id for r in want}) / 20)
    assert np.mean(hits) >= 0.93  # users beyond the tuning sample, same ballpark
    single = approximate.recommend(users[0], k=20)
    assert [r.item_id for r in single] == [
        r.item_id for r in approximate.recommend_many(users[:1], k=20)[0]
    ]


def test_candidates_exclude_what_they_are_told(index: ItemIndex, bundle: Bundle) -> None:
    vector = np.asarray(bundle.user_embedding[0])
    first = index.candidates(vector, 50, np.empty(0, dtype=np.int64))
    again = index.candidates(vector, 50, first[:25])
    assert len(again) == 50 and not set(again) & set(first[:25])
    assert set(first[25:]) <= set(again)


def test_a_scorer_re_ranks_the_candidates(bundle: Bundle, index: ItemIndex) -> None:
    plain = Recommender(bundle, index=index).recommend("u1", k=10)
    boosted_item = int(plain[-1].item_id[1:])

    def hybrid(user: int | None, vector: np.ndarray, items: np.ndarray) -> np.ndarray:
        assert user == 1 and items.size == 200
        return bundle.item_embedding[items] @ vector + 1e3 * (items == boosted_item)

    top = Recommender(bundle, index=index, scorer=hybrid).recommend("u1", k=10)
    assert top[0].item_id == plain[-1].item_id and top[0].score > 1e3
    assert [r.item_id for r in top[1:]] == [r.item_id for r in plain[:-1]]


def test_index_is_built_once_per_model_and_only_for_large_catalogues(
    bundle: Bundle, index: ItemIndex
) -> None:
    assert open_index(bundle, min_items=50_000) is None  # small catalogue: exact scoring
    assert open_index(bundle, min_items=0) is None
    notes: list[str] = []
    again = open_index(bundle, min_items=1_000, note=notes.append)
    assert again is not None and again.meta == index.meta and not notes  # loaded, not rebuilt
    assert (Path(bundle.path) / ANN_DIR / "index.faiss").exists()
    other = clustered_bundle(
        Path(bundle.path), num_items=2_000, num_users=50, seed=1, model_id="m2"
    )
    rebuilt = open_index(other, min_items=1_000, note=notes.append)
    assert rebuilt is not None and rebuilt.meta.model_id == "m2" and rebuilt.meta.num_items == 2_000
    assert notes[0].startswith("building the approximate index for 2,000 items")
    assert "recall@20" in notes[1]


def test_missing_faiss_is_a_clear_error(
    bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)
    fresh = clustered_bundle(tmp_path / "serving", num_items=2_000, num_users=20)
    with pytest.raises(KgrecError, match=r"pip install 'kgrec\[ann\]'"):
        open_index(fresh, min_items=1_000)
