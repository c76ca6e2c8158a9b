"""Serving on the demo data: the bundle, top-k, cold start and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from kgrec.data.hetero import load_artifact
from kgrec.data.history import History
from kgrec.data.split import SPLITS
from kgrec.errors import KgrecError
from kgrec.serve.bundle import Bundle, BundleMeta, is_fresh, serving_dir
from kgrec.serve.export import open_bundle
from kgrec.serve.recommend import Recommender, UnknownIdError, parse_seed_items
from kgrec.train.checkpoint import load_checkpoint, read_serving
from tests.conftest import TrainedModel

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(demo_model: TrainedModel) -> Served:
    bundle = open_bundle(demo_model.checkpoint, demo_model.artifacts)
    return Served(demo_model.artifacts, demo_model.checkpoint, bundle)


@dataclass(frozen=True)
class Served:
    artifacts: Path
    checkpoint: Path
    bundle: Bundle


def all_interactions(artifacts: Path) -> pd.DataFrame:
    return pd.read_parquet(artifacts / "tables" / "interactions.parquet")


# ----------------------------------------------------------------------------- bundle


def test_bundle_matches_checkpoint_and_loads_without_torch(served: Served) -> None:
    serving = read_serving(served.checkpoint)
    b = served.bundle
    assert b.user_embedding.dtype == np.float32 and b.item_embedding.dtype == np.float32
    assert serving.item_output is not None and b.meta.kind == "hybrid"
    np.testing.assert_allclose(b.item_embedding, serving.item_output.numpy())
    assert len(b.model_id) == 16 and b.meta.dim == 16
    inter = all_interactions(served.artifacts)
    assert b.seen_indices.size == len(inter.drop_duplicates(["user_id", "item_id"]))
    code = (
        "import sys; from kgrec.serve.bundle import load_bundle; "
        "from kgrec.serve.recommend import Recommender; "
        f"r = Recommender(load_bundle({str(serving_dir(served.checkpoint))!r})); "
        "r.recommend('u0001', 5); "
        "from kgrec.serve.paths import Explainer; "
        "Explainer(r.bundle).explain('u0001', r.recommend('u0001', 1)[0].item_id); "
        "bad = [m for m in ('torch', 'pandas') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_cli_recommend_starts_without_torch_or_pandas(served: Served) -> None:
    """`kgrec recommend` from a fresh bundle loads neither torch nor pandas (nor rich for
    JSON): that is what keeps its start-up fast."""
    args = ["recommend", "--user", "u0001", "-f", "json", "--artifacts", str(served.artifacts)]
    code = (
        "import sys; from kgrec.cli import app; "
        f"app({args!r}, standalone_mode=False); "
        "bad = [m for m in ('torch', 'pandas', 'rich') if m in sys.modules]; "
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["recommendations"]


def test_stale_bundle_is_rebuilt(served: Served) -> None:
    folder = serving_dir(served.checkpoint)
    assert is_fresh(folder, served.checkpoint, served.artifacts)
    stat = served.checkpoint.stat()
    os.utime(served.checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert not is_fresh(folder, served.checkpoint, served.artifacts)
    again = open_bundle(served.checkpoint, served.artifacts)
    assert is_fresh(folder, served.checkpoint, served.artifacts)
    assert again.model_id == served.bundle.model_id  # same bytes, same id
    (folder / "seen_indices.npy").unlink()
    open_bundle(served.checkpoint, served.artifacts)
    assert (folder / "seen_indices.npy").exists()
    with pytest.raises(KgrecError, match="kgrec train"):
        open_bundle(served.checkpoint.with_name("missing.pt"), served.artifacts)


# ----------------------------------------------------------------------------- recommend


def test_seen_items_are_never_recommended(served: Served) -> None:
    b = served.bundle
    rec = Recommender(b)
    inter = all_interactions(served.artifacts)
    seen = inter.groupby("user_id")["item_id"].agg(set).to_dict()
    lists = rec.recommend_many(b.user_ids, k=100, batch_size=64)
    assert len(lists) == b.num_users
    for user, recs in zip(b.user_ids, lists, strict=True):
        assert len(recs) == min(100, b.num_items - len(seen.get(user, ())))
        assert not {r.item_id for r in recs} & seen.get(user, set())
    single = rec.recommend(b.user_ids[3], k=100)  # batched == one at a time
    assert [r.item_id for r in lists[3]] == [r.item_id for r in single]
    np.testing.assert_allclose([r.score for r in lists[3]], [r.score for r in single], rtol=1e-5)


def test_ranking_equals_the_checkpoints_own_scorer(served: Served) -> None:
    """numpy serving ranks exactly as the trained torch hybrid scores (every split is the
    history at serving time)."""
    b = served.bundle
    rec = Recommender(b)
    hybrid, _ = load_checkpoint(served.checkpoint)
    history = History.from_artifact(load_artifact(served.artifacts), SPLITS)
    score_fn = hybrid.score_fn(history)
    for user in ("u0001", "u0042", "u0400"):
        u = b.user_index(user)
        assert u is not None
        scores = score_fn(torch.tensor([u]))[0].double().numpy()
        scores[b.seen(u)] = -np.inf
        expected = np.argsort(-scores, kind="stable")[:10]
        recs = rec.recommend(user, k=10)
        assert [r.item_id for r in recs] == [b.item_ids[i] for i in expected]
        assert [r.rank for r in recs] == list(range(1, 11))
        np.testing.assert_allclose([r.score for r in recs], scores[expected], rtol=1e-4)
        assert all(r.title == b.titles[b.item_index(r.item_id) or 0] for r in recs)


def test_new_behaviour_counts_at_once(served: Served) -> None:
    """Items a known user just consumed (seed items) join their history as the latest and
    move the list toward them without retraining."""
    b = served.bundle
    rec = Recommender(b)
    before = rec.recommend("u0001", k=10)
    seeds = [r.item_id for r in rec.recommend(None, k=3, seed_items=["i0150"])]
    after = rec.recommend("u0001", k=10, seed_items=seeds)
    assert [r.item_id for r in after] != [r.item_id for r in before]
    assert not {r.item_id for r in after} & set(seeds)


def test_unknown_ids_and_bad_input(served: Served) -> None:
    rec = Recommender(served.bundle)
    with pytest.raises(UnknownIdError, match=r"unknown user 'nobody'.*--seed-items"):
        rec.recommend("nobody")
    with pytest.raises(UnknownIdError, match="'i9998', 'i9999'"):
        rec.recommend(None, seed_items=["i0001", "i9998", "i9999"])
    for bad in ([], "i0001", ["i0001", ""], [3]):
        with pytest.raises(KgrecError, match="malformed seed items"):
            rec.recommend(None, seed_items=bad)  # type: ignore[arg-type]
    with pytest.raises(KgrecError, match="malformed --seed-items"):
        parse_seed_items("i0001,,i0002")
    assert parse_seed_items(" i0001 , i0002") == ["i0001", "i0002"]
    with pytest.raises(KgrecError, match="positive"):
        rec.recommend("u0001", k=0)
    with pytest.raises(UnknownIdError):
        rec.recommend_many(["u0001", "nobody"])
    empty = Bundle(
        user_embedding=np.zeros((1, 4), np.float32),
        item_embedding=np.zeros((0, 4), np.float32),
        seen_indptr=np.zeros(2, np.int64),
        seen_indices=np.zeros(0, np.int64),
        user_ids=["u"],
        item_ids=[],
        titles=[],
        meta=BundleMeta("x", "", "", [0, 0], "", [0, 0], [0, 0], 1, 0, 0, 0, 4, 0, []),
        path=Path("."),
    )
    with pytest.raises(KgrecError, match="catalogue is empty"):
        Recommender(empty)


def test_cold_start_from_seed_items(served: Served) -> None:
    b = served.bundle
    rec = Recommender(b)
    seeds = ["i0001", "i0002", "i0003"]
    recs = rec.recommend("a-new-user", k=20, seed_items=seeds)
    assert len(recs) == 20 and not {r.item_id for r in recs} & set(seeds)
    idx = np.asarray([int(b.item_index(s) or 0) for s in seeds])
    assert b.scorer is not None  # the seeds are the whole history, all of age 0
    scores = b.scorer.score(idx, np.zeros(3, dtype=np.int64))
    scores[idx] = -np.inf
    expected = np.argsort(-scores, kind="stable")[:20]
    assert [r.item_id for r in recs] == [b.item_ids[i] for i in expected]
    known = rec.recommend("u0001", k=50, seed_items=seeds)  # a known user's history stays out
    u = b.user_index("u0001")
    assert u is not None
    assert not {b.item_index(r.item_id) for r in known} & set(b.seen(u).tolist())


# ----------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def cli(served: Served):
    from kgrec.cli import app

    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(
            app, [*args, "--artifacts", str(served.artifacts)], input=input, catch_exceptions=False
        )

    return run


def test_cli_recommend_json_and_errors(cli, served: Served) -> None:
    result = cli("recommend", "--user", "u0001", "-k", "5", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    expected = Recommender(served.bundle).recommend("u0001", k=5)
    assert [r["item_id"] for r in data["recommendations"]] == [r.item_id for r in expected]
    assert data["model_id"] == served.bundle.model_id

    cold = cli("recommend", "--seed-items", "i0001,i0002", "--format", "json")
    assert cold.exit_code == 0 and len(json.loads(cold.stdout)["recommendations"]) == 10

    for args, message in (
        (("--user", "nobody"), "unknown user 'nobody'"),
        (("--seed-items", "i0001,i9999"), "i9999"),
        (("--seed-items", "i0001,,"), "malformed"),
        (("--user", "u0001", "--format", "xml"), "--format"),
        (("--user", "u0001", "--checkpoint", "/no/such/model.pt"), "kgrec train"),
    ):
        bad = cli("recommend", *args)
        assert bad.exit_code != 0
        assert message in bad.stderr and "Traceback" not in bad.output


def test_cli_batch_mode_one_line_per_user(cli, tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("u0001\n\n# comment\nu0002\nnobody\nu0003\n")
    result = cli("recommend", "--users-file", str(users), "-k", "4", "--format", "json")
    assert result.exit_code == 1  # one user failed, the others were served
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["user_id"] for r in rows] == ["u0001", "u0002", "nobody", "u0003"]
    assert "error" in rows[2] and all(len(r["recommendations"]) == 4 for r in rows[:2])
    csv_out = cli("recommend", "--users-file", str(users), "--format", "csv")
    lines = csv_out.stdout.splitlines()
    assert lines[0].startswith("user_id,") and len(lines) == 5
    table = cli("recommend", "--users-file", "-", "--format", "table", input="u0001\nu0002\n")
    assert table.exit_code == 0 and len(table.stdout.splitlines()) == 2


def test_cli_explain(cli, served: Served) -> None:
    item = Recommender(served.bundle).recommend("u0001", k=1)[0].item_id
    result = cli("explain", "--user", "u0001", "--item", item, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["paths"] and data["paths"][0]["nodes"][0]["id"] == "u0001"
    table = cli("explain", "--user", "u0001", "--item", item)
    assert table.exit_code == 0 and "Because you liked" in table.stdout
    bad = cli("explain", "--user", "u0001", "--item", "i9999")
    assert bad.exit_code != 0 and "unknown item" in bad.stderr
