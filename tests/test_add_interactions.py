"""``kgrec add-interactions``: fold-in at serving, bad input, idempotence, re-export, rebuild."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kgrec.add_interactions import add_interactions
from kgrec.build import build_graph
from kgrec.cli import app
from kgrec.config import load_config
from kgrec.data.added_interactions import load_added_interactions
from kgrec.data.new_interactions import read_interactions_file
from kgrec.errors import ValidationError
from kgrec.serve.bundle import fresh_bundle
from kgrec.serve.export import export_bundle, open_bundle
from kgrec.serve.live import Histories, fold_in
from kgrec.serve.recommend import Recommender
from kgrec.store.factory import open_store
from tests.conftest import TrainedModel

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo"
runner = CliRunner()


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def trained(demo_model: TrainedModel, tmp_path: Path) -> Path:
    """A private copy of the shared demo artifact and model, its bundle exported."""
    art = tmp_path / "art"
    shutil.copytree(demo_model.artifacts, art)
    open_bundle(art / "model" / "model.pt", art)
    return art


def _add(art: Path, path: Path, *extra: str) -> dict:
    args = ["add-interactions", str(path), "--artifacts", str(art), "--no-db", "--json", *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def _ids(recs: list) -> list[str]:
    return [r.item_id for r in recs]


def test_recommend_moves_for_that_user_at_once_and_for_no_one_else(
    trained: Path, tmp_path: Path
) -> None:
    checkpoint = trained / "model" / "model.pt"
    before = Recommender(open_bundle(checkpoint, trained))
    mine, other = _ids(before.recommend("u0001", k=10)), _ids(before.recommend("u0002", k=10))
    # three items far down u0001's list join their history as the latest
    full = _ids(before.recommend("u0001", k=200))
    new_items = full[-3:]
    path = tmp_path / "today.csv"
    rows = [f"u0001,{item},5,{2_000_000_000 + k}" for k, item in enumerate(new_items)]
    path.write_text("user_id,item_id,rating,timestamp\n" + "\n".join(rows) + "\n")

    out = _add(trained, path)
    assert (out["rows"], out["added"], out["users"], out["new_users"]) == (3, 3, 1, 0)
    assert out["bundle"] == "refreshed"

    bundle = fresh_bundle(checkpoint, trained)
    assert bundle is not None  # no re-export needed
    after = Recommender(bundle)
    items, ages = bundle.history(bundle.user_index("u0001"))
    assert [bundle.item_ids[i] for i in items[-3:]] == new_items
    assert ages[-3:].tolist() == [2, 1, 0]
    assert _ids(after.recommend("u0001", k=10)) != mine
    assert not set(new_items) & set(_ids(after.recommend("u0001", k=200)))  # now seen
    assert _ids(after.recommend("u0002", k=10)) == other
    # the served score is the trained scorer's on the longer history
    scorer = bundle.scorer
    assert scorer is not None
    best = Recommender(bundle).recommend("u0001", k=1)[0]
    assert best.score == pytest.approx(
        float(scorer.score(items, ages)[bundle.item_index(best.item_id)])
    )


def test_a_new_user_gets_recommendations_and_a_re_export_replays_everything(
    trained: Path, tmp_path: Path
) -> None:
    path = tmp_path / "new.jsonl"
    lines = [{"user_id": "newbie", "item_id": i} for i in ("i0001", "i0002", "i0003")]
    lines.append({"user_id": "u0003", "item_id": "i0290", "rating": 4.5})
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = _add(trained, path)
    assert (out["added"], out["new_users"], out["users"]) == (4, 1, 2)

    checkpoint = trained / "model" / "model.pt"
    live = fresh_bundle(checkpoint, trained)
    assert live is not None
    served = Recommender(live).recommend("newbie", k=5)
    assert len(served) == 5 and not {"i0001", "i0002", "i0003"} & set(_ids(served))

    exported = open_bundle(checkpoint, trained)  # fresh: nothing exported yet
    folder = export_bundle(checkpoint, trained)  # as a retrain would
    again = open_bundle(checkpoint, trained)
    assert again.path == folder and again.user_ids == exported.user_ids
    for name in ("history_indptr", "history_items", "history_ages", "seen_indices"):
        assert np.array_equal(getattr(again, name), getattr(exported, name)), name
    assert np.allclose(again.user_embedding, exported.user_embedding, atol=1e-5)
    for user in ("newbie", "u0003", "u0004"):
        assert _ids(Recommender(again).recommend(user, k=10)) == _ids(
            Recommender(exported).recommend(user, k=10)
        )


def test_adding_the_same_file_again_changes_nothing(trained: Path, tmp_path: Path) -> None:
    path = tmp_path / "today.csv"
    path.write_text("user_id,item_id\nu0001,i0002\nu0009,i0100\nu0009,i0100\nzed,i0001\n")
    first = _add(trained, path)
    assert (first["rows"], first["added"], first["total"]) == (4, 3, 3)
    digest = _tree_digest(trained)
    second = _add(trained, path)
    assert (second["added"], second["skipped"], second["total"]) == (0, 3, 3)
    assert _tree_digest(trained) == digest
    # a pair the dataset has already is skipped too
    known = tmp_path / "known.csv"
    known.write_text("user_id,item_id\nu0001,i0268\n")
    assert _add(trained, known)["skipped"] == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user_id,item_id\nu0001,i0001\nu0001,nope\n", "bad.csv:3 [item_id]: unknown item id"),
        ("user_id,item_id,rating\nu0001,i0001,five\n", "bad.csv:2 [rating]: 'five' is not a"),
        ("user_id,item_id,timestamp\nu0001,i0001,1.5\n", "bad.csv:2 [timestamp]"),
        ("user,item_id\nu0001,i0001\n", "bad.csv:1 [user_id]: required column 'user_id'"),
        ("user_id,item_id\n,i0001\n", "bad.csv:2 [user_id]: empty id"),
    ],
)
def test_bad_rows_name_file_line_field_and_write_nothing(
    trained: Path, tmp_path: Path, text: str, expected: str
) -> None:
    digest = _tree_digest(trained)
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValidationError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        add_interactions(read_interactions_file(path), trained)
    args = ["add-interactions", str(path), "--artifacts", str(trained), "--no-db"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and expected in result.output
    assert "Traceback" not in result.output
    assert _tree_digest(trained) == digest


def test_stdin_is_read_and_named_in_errors(trained: Path) -> None:
    args = ["add-interactions", "-", "--artifacts", str(trained), "--no-db"]
    result = runner.invoke(app, args, input="user_id,item_id\nu0001,zzz\n")
    assert result.exit_code == 2 and "<stdin>:2 [item_id]" in result.output
    result = runner.invoke(app, [*args, "--json"], input="user_id,item_id\nu0001,i0002\n")
    assert result.exit_code == 0 and json.loads(result.output)["added"] == 1


def test_fold_in_matches_seed_items_ages_and_keeps_other_users() -> None:
    h = Histories(
        ["a", "b"],
        np.array([0, 2, 3]),
        np.array([5, 6, 7]),
        np.array([1, 0, 0]),
        np.array([0, 2, 3]),
        np.array([5, 6, 7]),
        np.zeros((2, 0), dtype=np.float32),
    )
    folded = fold_in(h, ["a", "c", "a"], np.array([1, 2, 3]), None)
    out = folded.histories
    assert out.user_ids == ["a", "b", "c"] and folded.new_users == 1
    assert out.history_indptr.tolist() == [0, 4, 5, 6]
    assert out.history_items.tolist() == [5, 6, 1, 3, 7, 2]
    assert out.history_ages.tolist() == [3, 2, 1, 0, 0, 0]
    assert out.seen_indices.tolist() == [1, 3, 5, 6, 7, 2]
    assert folded.users.tolist() == [0, 2]


# ---------------------------------------------------------------- the real graph database


def test_interactions_enter_the_graph_database_idempotently_and_survive_a_rebuild(
    falkordb_home: Path, graph_name: str, tmp_path: Path
) -> None:
    config = load_config(
        None,
        {
            "dataset.path": str(DEMO),
            "artifacts": str(tmp_path / "art"),
            "store.graph": graph_name,
            "state_dir": str(falkordb_home),
        },
    )
    build_graph(config)
    path = tmp_path / "today.csv"
    path.write_text("user_id,item_id,rating,timestamp\nu0001,i0002,4,1700000000\nnewbie,i0003,,\n")
    count = "MATCH (:User)-[r:INTERACTED {split: 'added'}]->(:Item) RETURN count(r)"
    store = open_store(config.store, config.state_path)
    try:
        for _ in range(2):  # the second run writes nothing new
            add_interactions(read_interactions_file(path), tmp_path / "art", store)
            assert store.query(count).rows == [[2]]
        rows = store.query(
            "MATCH (u:User {id: $u})-[r:INTERACTED]->(i:Item {id: $i}) "
            "RETURN r.rating, r.timestamp, r.split",
            {"u": "u0001", "i": "i0002"},
        ).rows
        assert rows == [[4.0, 1700000000, "added"]]
        newbie = "MATCH (u:User {id: 'newbie'})-[r:INTERACTED]->(:Item) RETURN count(r)"
        assert store.query(newbie).rows == [[1]]
    finally:
        store.close()

    build_graph(config)  # a rebuild keeps them: in the artifact and in the database
    assert len(load_added_interactions(tmp_path / "art")) == 2
    store = open_store(config.store, config.state_path)
    try:
        assert store.query(count).rows == [[2]]
        assert store.query("MATCH (u:User {id: 'newbie'}) RETURN count(u)").rows == [[1]]
    finally:
        store.close()
