"""Recording served lists in the real embedded FalkorDB: idempotent and safe under concurrency."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest

from kgrec.config import SplitConfig
from kgrec.data.contract import read_folder
from kgrec.data.split import split_interactions
from kgrec.data.validate import validate
from kgrec.errors import KgrecError
from kgrec.serve.graph_path import Edge, GraphPath, Node
from kgrec.serve.recommend import Recommendation
from kgrec.serve.record import ServedList, record_served, record_served_many, served
from kgrec.store.falkordb import FalkorDBStore
from kgrec.store.payload import payload_from_dataset
from kgrec.store.server import FalkorDBServer

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"
ITEMS = [f"i{n:04d}" for n in range(1, 11)]


def recs(items: list[str]) -> list[Recommendation]:
    return [Recommendation(i, f"title {i}", 1.0 / r, r) for r, i in enumerate(items, start=1)]


def connect(home: Path, graph: str) -> FalkorDBStore:
    server = FalkorDBServer(home)
    info = server.start()
    return FalkorDBStore(info.host, info.port, server.password(), graph=graph)


@pytest.fixture
def store(falkordb_home: Path, graph_name: str) -> Iterator[FalkorDBStore]:
    dataset = validate(read_folder(DEMO))
    payload = payload_from_dataset(dataset, split_interactions(dataset.interactions, SplitConfig()))
    store = connect(falkordb_home, graph_name)
    store.load(payload)
    yield store
    store._drop(graph_name)
    store.close()


def count_recommended(store: FalkorDBStore) -> list[list[object]]:
    return store.query(
        "MATCH (u:User)-[r:RECOMMENDED]->(i:Item) "
        "RETURN r.request_id AS req, count(r) AS n ORDER BY req"
    ).rows


def test_record_is_idempotent_and_reads_back(store: FalkorDBStore) -> None:
    path = GraphPath(
        "direct",
        (Node("user", "u0001", "u0001", 0), Node("item", "i0001", "X", 0)),
        (Edge("INTERACTED", "interacts", 0, 1),),
        0.5,
        0.1,
        "You already rated *X*",
    )
    paths = {"i0001": [path]}
    assert record_served(store, "u0001", recs(ITEMS[:3]), "m1", paths, "req-1") == 3
    first = served(store, "u0001", "i0001")
    assert record_served(store, "u0001", recs(ITEMS[:3]), "m1", paths, "req-1") == 3
    assert count_recommended(store) == [["req-1", 3]]
    again = served(store, "u0001", "i0001")
    assert again == first  # same request: same relationship, original time kept
    (only,) = again
    assert (only.request_id, only.rank, only.model_id) == ("req-1", 1, "m1")
    assert only.paths == paths["i0001"] and only.at.endswith("+00:00")
    record_served(store, "u0001", recs(ITEMS[:1]), "m2", None, "req-2")
    assert [s.request_id for s in served(store, "u0001", "i0001")] == ["req-2", "req-1"]
    assert served(store, "u0001", "i0009") == []


def test_record_unknown_user_is_an_error(store: FalkorDBStore) -> None:
    with pytest.raises(KgrecError, match="user 'nobody' not in the graph database"):
        record_served(store, "nobody", recs(ITEMS[:2]), "m1", None, "req-x")
    assert count_recommended(store) == []


def test_a_list_with_an_unknown_item_is_recorded_whole_or_not_at_all(
    store: FalkorDBStore,
) -> None:
    with pytest.raises(KgrecError, match="nothing recorded: item 'new-1' not in the graph"):
        record_served(store, "u0001", recs([*ITEMS[:2], "new-1"]), "m1", None, "req-y")
    assert count_recommended(store) == []


def test_a_group_of_lists_is_acknowledged_together_each_whole_or_not_at_all(
    store: FalkorDBStore,
) -> None:
    group = [
        ServedList("u0001", recs(ITEMS[:3]), "m1", None, "g-1"),
        ServedList("u0002", recs([ITEMS[0], "new-1"]), "m1", None, "g-2"),  # unknown item
        ServedList("nobody", recs(ITEMS[:2]), "m1", None, "g-3"),  # unknown user
        ServedList("u0003", recs(ITEMS[3:5]), "m1"),  # a fresh request id
    ]
    first, unknown_item, unknown_user, fresh = record_served_many(store, group)
    assert first == ("g-1", 3)
    assert isinstance(unknown_item, KgrecError) and "item 'new-1'" in str(unknown_item)
    assert isinstance(unknown_user, KgrecError) and "user 'nobody'" in str(unknown_user)
    assert not isinstance(fresh, KgrecError) and fresh[1] == 2 and len(fresh[0]) == 32
    assert count_recommended(store) == sorted([["g-1", 3], [fresh[0], 2]])
    # the same group again: the recorded lists change nothing, the others fail the same way
    again = record_served_many(store, group[:3])
    assert again[0] == ("g-1", 3) and all(isinstance(x, KgrecError) for x in again[1:])
    assert count_recommended(store) == sorted([["g-1", 3], [fresh[0], 2]])


def _worker(home: str, graph: str, request_ids: list[str]) -> None:
    store = connect(Path(home), graph)
    try:
        for request_id in request_ids:
            record_served(store, "u0002", recs(ITEMS), "m1", None, request_id)
    finally:
        store.close()


def test_concurrent_recorders_lose_and_duplicate_nothing(
    store: FalkorDBStore, falkordb_home: Path, graph_name: str
) -> None:
    ctx = multiprocessing.get_context("fork")  # the test module is not importable by name
    batches = [[f"a{n}" for n in range(15)], [f"b{n}" for n in range(15)]]
    procs = [
        ctx.Process(target=_worker, args=(str(falkordb_home), graph_name, ids)) for ids in batches
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    rows = count_recommended(store)
    assert sorted(str(r[0]) for r in rows) == sorted(batches[0] + batches[1])
    assert all(r[1] == len(ITEMS) for r in rows)
    _worker(str(falkordb_home), graph_name, batches[0][:3])  # re-running a request id
    assert count_recommended(store) == rows


def test_a_path_as_json_has_every_field_and_reads_back() -> None:
    path = GraphPath(
        "attribute",
        (Node("user", "u1", "u1", 0), Node("genre", "g", "Drama", 3), Node("item", "i", "X", 2)),
        (Edge("HAS_GENRE", "has_genre", 2, 1), Edge("INTERACTED", "interacts", 0, 2)),
        0.25,
        0.5,
        "Because you liked *X*",
        liked=False,
    )
    assert json.dumps(path.to_dict()) == json.dumps({**dataclasses.asdict(path), "hops": 2})
    assert GraphPath.from_dict(json.loads(json.dumps(path.to_dict()))) == path
