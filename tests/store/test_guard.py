"""The row-merge guard against the engine it guards: FalkorDB 4.16's too-small counts.

A tiny graph is loaded into the real embedded server; every query's true answer is computed
here in Python from the same edge lists. The guard must flag exactly the queries the engine
answers wrongly. The day FalkorDB is fixed, these tests fail and say to remove the guard.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import product
from pathlib import Path

import pytest

from kgrec.store.falkordb import FalkorDBStore
from kgrec.store.guard import row_merge_risk
from kgrec.store.library import list_queries
from kgrec.store.queries import cypher_dir
from kgrec.store.server import FalkorDBServer

AGE = {"a": 16, "b": 30}
INTERACTED = [("a", "x", 5), ("a", "y", 5), ("b", "x", 3)]  # (user, item, rating)
HAS_GENRE = [("x", "g"), ("y", "g")]
RECOMMENDED = [("a", "x"), ("a", "x"), ("a", "x"), ("b", "y")]  # one per request

FIXED = (
    "FalkorDB answered {query!r} correctly ({got}): the engine no longer merges rows. "
    "Remove the guard (kgrec/store/guard.py, its warning in `kgrec cypher run` and "
    "kgrec.query, the README's count(*) caveat) and these tests."
)


def _chains() -> list[tuple[str, str, str]]:
    """Every (user, item, genre) path through INTERACTED then HAS_GENRE."""
    return [(u, i, g) for (u, i, _), (j, g) in product(INTERACTED, HAS_GENRE) if i == j]


def _two_hops() -> int:
    """Directed 2-hop paths from a user to a genre over any relationship type."""
    to_items = [(u, i) for u, i, _ in INTERACTED] + RECOMMENDED
    return sum(1 for (_, i), (j, _) in product(to_items, HAS_GENRE) if i == j)


def _co_interactions() -> int:
    """(u, item, v) paths: both u and v interacted with the item (u = v included)."""
    return sum(1 for (_, i, _), (_, j, _) in product(INTERACTED, INTERACTED) if i == j)


def _bands() -> int:
    """Q1 on the tiny graph: paths per (age band, genre), summed."""
    return len([1 for u, _, _ in _chains() if AGE[u] < 18]) + len(
        [1 for u, _, _ in _chains() if AGE[u] >= 18]
    )


CHAIN = "MATCH (u:User)-[:INTERACTED]->(:Item)-[:HAS_GENRE]->(g:Genre)"

# (query, truth, measure): measure "total" sums the last column, "rows" counts the rows.
CASES: list[tuple[str, Callable[[], int], str]] = [
    (f"{CHAIN} RETURN g.id, count(*)", lambda: len(_chains()), "total"),
    (f"{CHAIN} RETURN count(g)", lambda: len(_chains()), "total"),
    (f"{CHAIN} RETURN sum(1)", lambda: len(_chains()), "total"),
    (f"{CHAIN} RETURN size(collect(u.id))", lambda: len(_chains()), "total"),
    (f"{CHAIN} RETURN u.id, g.id", lambda: len(_chains()), "rows"),
    (f"{CHAIN} RETURN DISTINCT u.id, g.id", lambda: len({(u, g) for u, _, g in _chains()}),
     "rows"),
    (f"{CHAIN} RETURN count(DISTINCT u)", lambda: len({u for u, _, _ in _chains()}), "total"),
    ("MATCH (u:User)-[r:INTERACTED]->(:Item)-[:HAS_GENRE]->(g) RETURN count(r)",
     lambda: len(_chains()), "total"),
    ("MATCH (u:User)-[:INTERACTED]->(i:Item)-[h:HAS_GENRE]->(g) RETURN count(h)",
     lambda: len(_chains()), "total"),
    ("MATCH (u:User)-[:INTERACTED]->(i:Item)-[:HAS_GENRE]->(g) WHERE i.id <> '' "
     "RETURN count(*)", lambda: len(_chains()), "total"),
    ("MATCH (u:User)-[:INTERACTED]->(i:Item)-[:HAS_GENRE]->(g) WHERE i:Item RETURN count(*)",
     lambda: len(_chains()), "total"),
    ("MATCH p = (u:User)-[:INTERACTED]->(:Item)-[:HAS_GENRE]->(g) RETURN count(*)",
     lambda: len(_chains()), "total"),
    ("MATCH (u:User)-[:INTERACTED]->(i:Item)-[:HAS_GENRE]->(g) WITH * RETURN count(*)",
     lambda: len(_chains()), "total"),
    ("MATCH (u:User)-[:INTERACTED {rating: 5}]->(:Item)-[:HAS_GENRE]->(g) RETURN count(*)",
     lambda: sum(1 for u, i, r in INTERACTED if r == 5), "total"),
    ("MATCH (u:User)-[:INTERACTED]->(i:Item) MATCH (i)-[:HAS_GENRE]->(g) RETURN count(*)",
     lambda: len(_chains()), "total"),
    ("MATCH (u:User)-[:INTERACTED]->(i:Item), (i)-[:HAS_GENRE]->(g) RETURN count(*)",
     lambda: len(_chains()), "total"),
    ("MATCH (u:User)-[:INTERACTED]->(i:Item) WITH u, i MATCH (i)-[:HAS_GENRE]->(g) "
     "RETURN count(*)", lambda: len(_chains()), "total"),
    ("MATCH (i:Item) MATCH (u:User)-[:INTERACTED]->(i)-[:HAS_GENRE]->(g) RETURN count(*)",
     lambda: len(_chains()), "total"),
    ("MATCH (g:Genre) OPTIONAL MATCH (u:User)-[:INTERACTED]->()-[:HAS_GENRE]->(g) "
     "RETURN count(u)", lambda: len(_chains()), "total"),
    ("MATCH (u:User)-[:INTERACTED]->(:Item)<-[:INTERACTED]-(v:User) RETURN count(*)",
     _co_interactions, "total"),
    ("MATCH (u:User)-[*2]->(g:Genre) RETURN count(*)", _two_hops, "total"),
    ("MATCH (u:User)-[*1..2]->(g:Genre) RETURN count(*)", _two_hops, "total"),
    ("MATCH (u:User)-[:RECOMMENDED]->(i:Item) RETURN i.id, count(*)",
     lambda: len(RECOMMENDED), "total"),
    ("MATCH (u:User)-[r:RECOMMENDED]->(i:Item) RETURN i.id, count(r)",
     lambda: len(RECOMMENDED), "total"),
    ("MATCH (u:User)-[:INTERACTED]->(i:Item) RETURN count(*)", lambda: len(INTERACTED), "total"),
    ("MATCH (u:User)-->(i:Item) RETURN count(*)",
     lambda: len(INTERACTED) + len(RECOMMENDED), "total"),
    (f"{CHAIN} WITH CASE WHEN u.age < 18 THEN 'under 18' ELSE '18+' END AS band, "
     "g.id AS genre, count(*) AS n RETURN band, genre, n", _bands, "total"),
    ("MATCH (u:User)-[r:INTERACTED]->(:Item)-[:HAS_GENRE]->(g:Genre) WITH CASE WHEN u.age < 18 "
     "THEN 'under 18' ELSE '18+' END AS band, g.id AS genre, count(r) AS n "
     "RETURN band, genre, n", _bands, "total"),
]  # fmt: skip


@pytest.fixture(scope="module")
def store(falkordb_home: Path) -> Iterator[FalkorDBStore]:
    server = FalkorDBServer(falkordb_home)
    info = server.start()
    store = FalkorDBStore(info.host, info.port, server.password(), graph="t_guard")
    store._drop("t_guard")
    store.query(
        "UNWIND $users AS u CREATE (:User {id: u.id, age: u.age}) "
        "WITH count(*) AS done UNWIND ['x', 'y'] AS i CREATE (:Item {id: i}) "
        "WITH count(*) AS done CREATE (:Genre {id: 'g'})",
        {"users": [{"id": u, "age": a} for u, a in AGE.items()]},
        write=True,
    )
    for query, rows in (
        ("MATCH (u:User {id: row[0]}), (i:Item {id: row[1]}) "
         "CREATE (u)-[:INTERACTED {rating: row[2]}]->(i)", INTERACTED),
        ("MATCH (i:Item {id: row[0]}), (g:Genre {id: row[1]}) CREATE (i)-[:HAS_GENRE]->(g)",
         HAS_GENRE),
        ("MATCH (u:User {id: row[0]}), (i:Item {id: row[1]}) CREATE (u)-[:RECOMMENDED]->(i)",
         RECOMMENDED),
    ):  # fmt: skip
        store.query(f"UNWIND $rows AS row {query}", {"rows": [list(r) for r in rows]}, write=True)
    yield store
    store._drop("t_guard")
    store.close()


def _measure(store: FalkorDBStore, query: str, measure: str) -> int:
    rows = store.query(query).rows
    return len(rows) if measure == "rows" else sum(int(row[-1]) for row in rows)


def test_the_engine_still_merges_rows(store: FalkorDBStore) -> None:
    """Fails the day FalkorDB counts paths right: then remove the guard."""
    query = f"{CHAIN} RETURN g.id, count(*)"
    got = _measure(store, query, "total")
    assert got != len(_chains()), FIXED.format(query=query, got=got)
    assert got == len({(u, g) for u, _, g in _chains()})  # one row per distinct (u, g)


@pytest.mark.parametrize(("query", "truth", "measure"), CASES, ids=range(len(CASES)))
def test_guard_flags_exactly_the_wrong_answers(
    store: FalkorDBStore, query: str, truth: Callable[[], int], measure: str
) -> None:
    got = _measure(store, query, measure)
    risk = row_merge_risk(query)
    if risk is None:
        assert got == truth(), f"FalkorDB answered {got}, truth {truth()}, no warning: {query}"
    elif got == truth():
        pytest.fail(FIXED.format(query=query, got=got) + f" The guard said: {risk.message()}")


def test_every_query_kgrec_ships_avoids_the_merge() -> None:
    files = sorted(cypher_dir().rglob("*.cypher"))
    assert len(files) > len(list_queries()) > 10
    for path in files:
        risk = row_merge_risk(path.read_text(encoding="utf-8"))
        assert risk is None, f"{path}: {risk.message()}"


@pytest.mark.parametrize(
    "query",
    [
        "MATCH (u:User) WHERE u.note = '(u)-[:INTERACTED]->()-[:HAS_GENRE]->(g)' RETURN count(*)",
        "// MATCH (u)-[:A]->()-[:B]->(g) RETURN count(*)\nMATCH (u:User) RETURN count(*)",
        "MATCH (u:User)-[:INTERACTED]->(:Item)-[:HAS_GENRE]->(g) WHERE g.name STARTS WITH 'D' "
        "RETURN count(DISTINCT u)",
        "MATCH (u:User) WHERE (u)-[:INTERACTED]->()-[:HAS_GENRE]->() RETURN count(*)",
        "MATCH (u:User)-[:INTERACTED]->()-[:HAS_GENRE]->(g) RETURN min(u.age), max(u.age)",
        "MATCH (u:User)-[:INTERACTED]->()-[:HAS_GENRE]->(g) WITH DISTINCT u, g RETURN count(*)",
        "CREATE (a:X)-[:R]->(:Y)-[:R]->(c:Z)",
    ],
)
def test_shapes_that_are_right(query: str) -> None:
    assert row_merge_risk(query) is None


def test_the_warning_is_one_line_naming_the_pattern_and_the_fix() -> None:
    risk = row_merge_risk(
        "MATCH (u:User)-[:INTERACTED]->(:Item)-[:HAS_GENRE]->(g:Genre)\n"
        "WITH g, count(*) AS n\nRETURN g.id, n UNION MATCH (n) RETURN n.id, 1"
    )
    assert risk is not None and risk.kind == "chain" and risk.affected == "count(*)"
    message = risk.message()
    assert "\n" not in message and message.startswith("warning: ")
    assert "(u:User)-[:INTERACTED]->(:Item)-[:HAS_GENRE]->(g:Genre)" in message
    assert "u, g" in message and "[r:INTERACTED] ... count(r)" in message
    served = row_merge_risk("MATCH (:User)-[:RECOMMENDED]->(i:Item) RETURN i.id, count(*)")
    assert served is not None and served.kind == "parallel"
    assert "[:RECOMMENDED]" in served.message()
    rows = row_merge_risk(f"{CHAIN} RETURN u.id, g.id")
    assert rows is not None and rows.affected == "rows" and "DISTINCT" in rows.message()
