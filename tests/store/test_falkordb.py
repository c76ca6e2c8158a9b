"""Loading into and querying the real embedded FalkorDB server."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from kgrec.config import SplitConfig
from kgrec.data.contract import read_folder
from kgrec.data.split import split_interactions
from kgrec.data.validate import validate
from kgrec.errors import StoreError
from kgrec.store.base import GraphPayload, RelationshipSet
from kgrec.store.falkordb import FalkorDBStore
from kgrec.store.payload import payload_from_dataset
from kgrec.store.queries import load_query
from kgrec.store.server import FalkorDBServer

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"


@pytest.fixture(scope="module")
def demo_payload() -> GraphPayload:
    dataset = validate(read_folder(DEMO))
    return payload_from_dataset(dataset, split_interactions(dataset.interactions, SplitConfig()))


@pytest.fixture
def store(falkordb_home: Path, graph_name: str):  # type: ignore[no-untyped-def]
    server = FalkorDBServer(falkordb_home)
    info = server.start()
    store = FalkorDBStore(info.host, info.port, server.password(), graph=graph_name)
    yield store
    store._drop(graph_name)
    store.close()


def snapshot(store: FalkorDBStore) -> tuple[list[list[object]], list[list[object]]]:
    """Every node and relationship with its properties, in a stable order."""
    nodes = store.query(
        "MATCH (n) RETURN labels(n)[0] AS l, n.id AS id, properties(n) AS p ORDER BY l, id"
    ).rows
    rels = store.query(
        "MATCH (a)-[r]->(b) RETURN type(r) AS t, a.id AS s, b.id AS d, properties(r) AS p "
        "ORDER BY t, s, d"
    ).rows
    return nodes, rels


def test_load_counts_equal_input_and_rerun_is_idempotent(
    store: FalkorDBStore, demo_payload: GraphPayload
) -> None:
    seen: list[int] = []
    counts = store.load(demo_payload, batch_size=3_000, progress=seen.append)
    assert counts == demo_payload.expected_counts()
    assert counts.relationships["INTERACTED"] == 19_448
    assert sum(seen) == sum(counts.nodes.values()) + sum(counts.relationships.values())
    first = snapshot(store)
    assert store.load(demo_payload, batch_size=10_000) == counts
    assert snapshot(store) == first


def test_properties_round_trip_and_missing_values_are_absent(
    store: FalkorDBStore, demo_payload: GraphPayload
) -> None:
    store.load(demo_payload)
    row = store.query(
        "MATCH (u:User {id: $u})-[r:INTERACTED]->(i:Item) "
        "RETURN r.rating AS rating, r.split AS split, i.title AS title ORDER BY r.timestamp",
        {"u": "u0001"},
    ).rows
    inter = demo_payload.relationships[0].frame
    mine = inter[inter["source"] == "u0001"].sort_values("timestamp")
    assert [r[0] for r in row] == pytest.approx(mine["rating"].tolist())
    assert [r[1] for r in row] == mine["split"].tolist()
    assert all(isinstance(r[2], str) and r[2] for r in row)
    nulls = store.query("MATCH (n) WHERE n.id IS NULL RETURN count(n) AS n").rows
    assert nulls == [[0]]


def test_numbers_are_stored_as_numbers(store: FalkorDBStore, demo_payload: GraphPayload) -> None:
    store.load(demo_payload)
    types = store.query(
        "MATCH (u:User {id: 'u0002'})-[r:INTERACTED]->(i:Item) WITH u, r, i LIMIT 1 "
        "RETURN typeOf(u.age), typeOf(i.year), typeOf(r.rating), typeOf(r.timestamp), "
        "typeOf(u.occupation), typeOf(i.title)"
    ).rows
    assert types == [["Integer", "Integer", "Float", "Integer", "String", "String"]]
    users = pd.read_csv(DEMO / "users.csv")
    young = store.query("MATCH (u:User) WHERE u.age < 18 RETURN count(u) AS n").rows
    assert young == [[int((users["age"] < 18).sum())]] and young[0][0] > 0


def test_failed_load_leaves_the_live_graph_unchanged(
    store: FalkorDBStore, demo_payload: GraphPayload
) -> None:
    store.load(demo_payload)
    before = snapshot(store)
    dangling = RelationshipSet(
        "DIRECTED_BY",
        "Item",
        "Director",
        pd.DataFrame({"source": ["i0001"], "target": ["no-such-director"]}),
    )
    broken = replace(demo_payload, relationships=(*demo_payload.relationships, dangling))
    with pytest.raises(StoreError, match="DIRECTED_BY relationship target 'no-such-director'"):
        store.load(broken)
    assert snapshot(store) == before
    assert f"{store.graph_name}__staging" not in store._db.list_graphs()


def test_recorded_recommendations_survive_a_rebuild(
    store: FalkorDBStore, demo_payload: GraphPayload
) -> None:
    store.load(demo_payload)
    store.query(
        "MATCH (u:User {id: $u}), (i:Item {id: $i}) "
        "CREATE (u)-[:RECOMMENDED {rank: 1, score: 0.5, model_id: 'm1'}]->(i)",
        {"u": "u0002", "i": "i0003"},
        write=True,
    )
    store.load(demo_payload)
    rows = store.query(
        "MATCH (u:User)-[r:RECOMMENDED]->(i:Item) RETURN u.id, i.id, r.rank, r.model_id"
    ).rows
    assert rows == [["u0002", "i0003", 1, "m1"]]


def test_reads_are_read_only_and_values_never_become_cypher(
    store: FalkorDBStore, demo_payload: GraphPayload
) -> None:
    store.load(demo_payload)
    with pytest.raises(StoreError, match="--write"):
        store.query("MATCH (n:User) DETACH DELETE n")
    hostile = "x'}) MATCH (n) DETACH DELETE n //"
    assert store.query("MATCH (n:User {id: $id}) RETURN n.id", {"id": hostile}).rows == []
    store.query("CREATE (:Tag {id: $id})", {"id": hostile}, write=True)
    assert store.query("MATCH (n:Tag) RETURN n.id").rows == [[hostile]]
    assert store.counts().nodes["User"] == 400


def test_unknown_graph_is_a_clear_error(falkordb_home: Path) -> None:
    server = FalkorDBServer(falkordb_home)
    info = server.start()
    store = FalkorDBStore(info.host, info.port, server.password(), graph="never_loaded")
    store._db.select_graph("t_other").query("CREATE (:X)")
    with pytest.raises(StoreError, match=r"does not exist yet.*one that exists: .*t_other"):
        store.query("MATCH (n) RETURN n")
    assert store.counts().nodes == {}
    assert "t_other" in store.graphs() and "never_loaded" not in store.graphs()
    store._drop("t_other")
    store.close()


def test_records_since_a_time_are_found_through_an_index(
    store: FalkorDBStore, demo_payload: GraphPayload
) -> None:
    store.load(demo_payload)
    graph = store._db.select_graph(store.graph_name)
    plan = "\n".join(graph.explain(load_query("load/served_since"), {"since": 0}).plan)
    assert "Index Scan" in plan, plan
    store.query(
        "MATCH (u:User {id: $u}), (i:Item {id: $i}) CREATE (u)-[:RECOMMENDED {ts: $ts}]->(i)",
        {"u": "u0002", "i": "i0003", "ts": 5},
        write=True,
    )
    assert graph.query(load_query("load/served_since"), {"since": 5}).result_set[0][1:3] == [
        "u0002",
        "i0003",
    ]
    assert graph.query(load_query("load/served_since"), {"since": 6}).result_set == []
