"""``build-graph`` end to end against the real embedded database: bad input changes nothing."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest

from kgrec.build import build_graph
from kgrec.config import load_config
from kgrec.errors import ValidationError
from kgrec.store.falkordb import FalkorDBStore
from kgrec.store.server import FalkorDBServer

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def db_snapshot(home: Path, graph: str) -> tuple[list[list[object]], list[list[object]]]:
    server = FalkorDBServer(home)
    info = server.start()
    store = FalkorDBStore(info.host, info.port, server.password(), graph=graph)
    try:
        nodes = store.query(
            "MATCH (n) RETURN labels(n)[0] AS l, properties(n) AS p ORDER BY l, n.id"
        ).rows
        rels = store.query(
            "MATCH (a)-[r]->(b) RETURN type(r) AS t, a.id, b.id, properties(r) "
            "ORDER BY t, a.id, b.id"
        ).rows
    finally:
        store.close()
    return nodes, rels


# Each case corrupts one file of a copy of the demo data: (file, transform, expected message).
BAD_INPUTS = {
    "misnamed column": ("items.csv", lambda t: t.replace("item_id", "itemid", 1), "item_id"),
    "empty file": ("interactions.csv", lambda t: "", "file is empty"),
    "duplicate id": (
        "items.csv",
        lambda t: t + t.splitlines()[1] + "\n",
        "duplicate id",
    ),
    "unknown item": (
        "interactions.csv",
        lambda t: t + "u0001,i9999,4,1\n",
        "unknown item id",
    ),
    "non-numeric rating": (
        "interactions.csv",
        lambda t: t + "u0001,i0001,five,1\n",
        "rating",
    ),
    "undecodable bytes": ("items.csv", lambda t: t[:200] + "\udcff" + t[200:], "UTF-8"),
    "self-loop": ("triples.csv", lambda t: t + "i0001,similar_to,i0001,item,item\n", "self-loop"),
    "more fields than the header": (  # pandas would shift the columns and blame an age
        "users.csv",
        lambda t: t.replace("\n", ",24\n", 2).replace(",24\n", "\n", 1),
        "users.csv:2: 4 fields but the header has 3",
    ),
}


@pytest.fixture(scope="module")
def built(falkordb_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The demo graph built once into a database graph and an artifact folder."""
    overrides = {"state_dir": str(falkordb_home), "store.graph": "t_build_bad_input"}
    artifacts = tmp_path_factory.mktemp("build") / "artifacts"
    report = build_graph(load_config(None, {**overrides, "artifacts": str(artifacts)}))
    assert report.store_counts == report.expected_store_counts
    return {
        "overrides": overrides,
        "artifacts": artifacts,
        "db": db_snapshot(falkordb_home, overrides["store.graph"]),
        "files": tree_digest(artifacts),
    }


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_leaves_database_and_artifacts_as_they_were(
    case: str, tmp_path: Path, falkordb_home: Path, built: dict[str, Any]
) -> None:
    overrides, artifacts = built["overrides"], built["artifacts"]
    graph = overrides["store.graph"]

    bad_data = tmp_path / "bad"
    shutil.copytree(DEMO, bad_data)
    name, transform, message = BAD_INPUTS[case]
    text = (bad_data / name).read_text(encoding="utf-8")
    (bad_data / name).write_bytes(transform(text).encode("utf-8", "surrogateescape"))
    bad = load_config(
        None, {**overrides, "artifacts": str(artifacts), "dataset.path": str(bad_data)}
    )
    with pytest.raises(ValidationError) as info:
        build_graph(bad)
    assert message in str(info.value)
    assert name in str(info.value)

    assert tree_digest(artifacts) == built["files"]
    assert db_snapshot(falkordb_home, graph) == built["db"]
    # no temporaries left behind (the writer lock file stays, empty of any holder)
    assert sorted(p.name for p in artifacts.parent.iterdir()) == [".artifacts.lock", "artifacts"]


def test_a_rebuild_of_the_same_data_keeps_features_and_models(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(DEMO, data)
    config = load_config(
        None,
        {"dataset.path": str(data), "artifacts": str(tmp_path / "art"), "store.enabled": False},
    )
    build_graph(config)
    (tmp_path / "art" / "model").mkdir()
    (tmp_path / "art" / "model" / "model.pt").write_bytes(b"a checkpoint")
    (tmp_path / "art" / "features.pt").write_bytes(b"features")

    report = build_graph(config)  # same data: what was made from it stays
    assert (tmp_path / "art" / "model" / "model.pt").read_bytes() == b"a checkpoint"
    assert (tmp_path / "art" / "features.pt").read_bytes() == b"features"
    assert any("kept features.pt, model" in note for note in report.notes)

    items = data / "items.csv"
    items.write_text(items.read_text().replace("The Golden Signal", "The Golden Sign"))
    report = build_graph(config)  # other data: features and models would describe it wrongly
    assert not (tmp_path / "art" / "model").exists()
    assert not (tmp_path / "art" / "features.pt").exists()
    assert any("the data changed" in note for note in report.notes)
