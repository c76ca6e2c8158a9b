"""The analysts' and support Cypher library: headers, parameters, and every query's numbers.

The queries run against the real embedded FalkorDB with the demo data loaded once for the
module; each result is checked against the same numbers computed with pandas straight from
``data/demo/*.csv`` (the train/val/test split is recomputed here too: temporal leave-one-out).
"""

from __future__ import annotations

import itertools
import json
import math
import shlex
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kgrec.config import SplitConfig
from kgrec.data.contract import read_folder
from kgrec.data.split import split_interactions
from kgrec.data.validate import validate
from kgrec.errors import KgrecError
from kgrec.store.falkordb import FalkorDBStore
from kgrec.store.library import (
    Param,
    bind_params,
    find_query,
    list_queries,
    parse_query,
    resolve_query,
    run_query,
    used_parameters,
)
from kgrec.store.payload import payload_from_dataset
from kgrec.store.server import FalkorDBServer

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"
HOSTILE = "x'}) MATCH (n) DETACH DELETE n //"

# Recorded recommendations the tests create (what the serving layer would write).
RECS = [
    {"user": "u0001", "item": "i0002", "rank": 1, "score": 0.91, "model_id": "m1",
     "at": "2024-06-01T10:00:00Z", "request_id": "r1",
     "paths": [["u0001", "INTERACTED", "i0013", "HAS_GENRE", "genre:documentary"]],
     "reasons": ["Because you liked *A*, also a Documentary title",
                 "Because you liked *B*: people who liked it also liked *C*"],
     "shares": [0.4, 0.25]},
    {"user": "u0001", "item": "i0005", "rank": 2, "score": 0.85, "model_id": "m1",
     "at": "2024-06-01T10:00:00Z", "request_id": "r1", "paths": []},
    {"user": "u0001", "item": "i0002", "rank": 3, "score": 0.42, "model_id": "m2",
     "at": "2024-06-03T08:30:00Z", "request_id": "r2", "paths": [["u0001", "x", "i0002"]],
     "reasons": ["Because you liked *D* (*D* sequel *C*)"], "shares": [0.6]},
    {"user": "u0002", "item": "i0077", "rank": 1, "score": 0.99, "model_id": "m2",
     "at": "2024-06-03T09:00:00Z", "request_id": "r3", "paths": []},
    {"user": "u0003", "item": "i0161", "rank": 1, "score": 0.7, "model_id": "m1",
     "at": "2024-05-30T00:00:00Z", "request_id": "r4", "paths": []},
    {"user": "u0003", "item": "i0400", "rank": 2, "score": 0.6, "model_id": "m1",
     "at": "2024-05-30T00:00:00Z", "request_id": "r4", "paths": []},
    *({"user": "u0002", "item": item, "rank": rank, "score": 1 / rank, "model_id": "m2",
       "at": "2024-06-04T12:00:00Z", "request_id": "r5", "paths": []}
      for rank, item in enumerate(["i0002", "i0005", "i0077", "i0161"], 1)),
]  # fmt: skip


# --------------------------------------------------------------------------- pandas side


class Demo:
    """The demo CSVs with the split recomputed, and the recommendations recorded above."""

    def __init__(self) -> None:
        inter = pd.read_csv(DEMO / "interactions.csv", dtype={"user_id": str, "item_id": str})
        inter["pos"] = np.arange(len(inter))
        ordered = inter.sort_values(["user_id", "timestamp", "pos"], kind="stable")
        from_end = ordered.groupby("user_id").cumcount(ascending=False)
        size = ordered.groupby("user_id")["item_id"].transform("size")
        split = np.where(from_end == 0, "test", np.where(from_end == 1, "val", "train"))
        inter["split"] = pd.Series(np.where(size >= 3, split, "train"), index=ordered.index)
        self.inter = inter
        self.train = inter[inter["split"] == "train"]
        self.items = pd.read_csv(DEMO / "items.csv", dtype={"item_id": str})
        self.entities = pd.read_csv(DEMO / "entities.csv", dtype=str)
        self.triples = pd.read_csv(DEMO / "triples.csv", dtype=str)
        self.item_genre = self.triples.loc[
            self.triples["relation"] == "has_genre", ["head", "tail"]
        ].rename(columns={"head": "item_id", "tail": "genre"})
        self.recs = pd.DataFrame(RECS).rename(columns={"user": "user_id", "item": "item_id"})

    def item_counts(self) -> pd.Series:
        """Train interactions per item (every item, 0 included)."""
        counts = self.train.groupby("item_id").size()
        return counts.reindex(self.items["item_id"], fill_value=0).rename("n")

    def ranked_items(self) -> pd.DataFrame:
        """Items by train interactions, most first, ties by id."""
        frame = self.item_counts().reset_index()
        return frame.sort_values(["n", "item_id"], ascending=[False, True], ignore_index=True)


@pytest.fixture(scope="module")
def demo() -> Demo:
    return Demo()


@pytest.fixture(scope="module")
def store(falkordb_home: Path) -> Iterator[FalkorDBStore]:
    dataset = validate(read_folder(DEMO))
    payload = payload_from_dataset(dataset, split_interactions(dataset.interactions, SplitConfig()))
    server = FalkorDBServer(falkordb_home)
    info = server.start()
    store = FalkorDBStore(info.host, info.port, server.password(), graph="t_library")
    store.load(payload)
    keys = ("rank", "score", "model_id", "at", "request_id", "reasons", "shares")
    rows = [
        {
            "user": r["user"],
            "item": r["item"],
            "props": {"paths": json.dumps(r["paths"]), **{k: r[k] for k in keys if k in r}},
        }
        for r in RECS
    ]  # records without reasons have none, as before reasons were recorded
    store.query(
        "UNWIND $rows AS row MATCH (u:User {id: row.user}) MATCH (i:Item {id: row.item}) "
        "CREATE (u)-[r:RECOMMENDED]->(i) SET r += row.props",
        {"rows": rows},
        write=True,
    )
    yield store
    store._drop("t_library")
    store.close()


def run(store: FalkorDBStore, name: str, **given: Any) -> list[dict[str, Any]]:
    return list(run_query(store, find_query(name), given).records())


# --------------------------------------------------------------------------- headers


def test_header_is_parsed_with_continuations_types_and_defaults() -> None:
    query = parse_query(
        "// name: demo_query\n"
        "// purpose: Does a thing,\n"
        "//   over two lines.\n"
        '// params: who (string, e.g. "u1"), n (int, default 5, how many),\n'
        "//   ratio (float, default 0.5), strict (bool, default false),\n"
        '//   tag (string, default "a, b"), since (string, default null)\n'
        "// example: kgrec cypher run demo_query -p who=u1\n"
        "// A free comment that is not part of any key.\n"
        "MATCH (u:User {id: $who}) WHERE $strict OR $ratio > 0 OR $tag = '' "
        "OR $since IS NULL RETURN u LIMIT $n\n"
    )
    assert query.name == "demo_query"
    assert query.purpose == "Does a thing, over two lines."
    assert query.example == "kgrec cypher run demo_query -p who=u1"
    assert query.params == [
        Param("who", "string", None, True, 'e.g. "u1"'),
        Param("n", "int", 5, False, "how many"),
        Param("ratio", "float", 0.5, False, ""),
        Param("strict", "bool", False, False, ""),
        Param("tag", "string", "a, b", False, ""),
        Param("since", "string", None, False, ""),
    ]


def test_a_file_without_header_takes_its_params_from_the_text(tmp_path: Path) -> None:
    path = tmp_path / "mine.cypher"
    path.write_text(
        "// Items a user's friends liked.\n"
        "MATCH (u:User {id: $user})-[:INTERACTED]->(i) // not $this one\n"
        "WHERE i.title <> '$nor_this' AND i.year >= $year\n"
        "RETURN i.id SKIP $skip LIMIT $limit\n"
    )
    query = find_query(str(path))
    assert query.name == "mine"
    assert query.purpose == "Items a user's friends liked."
    assert [(p.name, p.type, p.required) for p in query.params] == [
        ("user", "any", True),
        ("year", "any", True),
        ("skip", "int", True),
        ("limit", "int", True),
    ]
    with pytest.raises(KgrecError, match=r"mine needs parameter\(s\) year, skip, limit"):
        bind_params(query, {"user": "u1"})
    assert bind_params(query, {"user": 7, "year": 1990, "skip": "0", "limit": 3}) == {
        "user": 7,
        "year": 1990,
        "skip": 0,
        "limit": 3,
    }
    assert used_parameters("RETURN $a, '$b', \"$c\", $a /* $d */") == ["a"]


def test_params_in_the_text_but_not_declared_are_still_required() -> None:
    query = parse_query("// params: a (int, default 1)\nRETURN $a + $b AS s")
    assert [p.name for p in query.params] == ["a", "b"]
    with pytest.raises(KgrecError, match="needs parameter"):
        bind_params(query, {})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("n (int, default x)", "default of n is not a int"),
        ("n (int), n (string)", "declared twice"),
        ("n m (int)", "cannot read parameter"),
    ],
)
def test_malformed_params_header_is_a_clear_error(params: str, message: str) -> None:
    with pytest.raises(KgrecError, match=message):
        parse_query(f"// params: {params}\nRETURN 1", name="bad")


def test_params_none() -> None:
    assert parse_query("// params: none\nRETURN 1").params == []


# --------------------------------------------------------------------------- the library


def test_every_library_file_has_a_complete_consistent_header() -> None:
    queries = list_queries()
    names = [q.name for q in queries]
    assert len(names) == len(set(names)), "query names must be unique"
    assert {q.qualified_name.split("/")[0] for q in queries} == {"analyst", "support"}
    for query in queries:
        assert query.path is not None
        assert query.name == query.path.stem, query.path
        assert query.purpose and query.purpose.endswith("."), query.name
        declared = [p.name for p in query.params if p.type != "any"]
        assert declared == [p.name for p in query.params], f"{query.name}: undeclared $params"
        assert set(declared) == set(used_parameters(query.text)), query.name
        assert query.example.startswith(f"kgrec cypher run {query.name}"), query.name
        # the example's -p values (JSON-parsed like the CLI does) bind without error
        words = shlex.split(query.example.split(">")[0])
        given = {}
        for flag, pair in itertools.pairwise(words):
            if flag == "-p":
                key, _, raw = pair.partition("=")
                try:
                    given[key] = json.loads(raw)
                except json.JSONDecodeError:
                    given[key] = raw
        bind_params(query, given)
        upper = query.text.upper()
        for word in ("CREATE", "MERGE", "DELETE", " SET ", "REMOVE"):
            assert word not in upper, f"{query.name} is not read-only ({word})"


def test_internal_queries_are_not_listed() -> None:
    names = {q.qualified_name for q in list_queries()}
    assert "analyst/top_items_per_genre" in names
    assert not any(n.startswith(("load/", "schema/")) for n in names)


def test_find_query_by_name_qualified_name_and_path() -> None:
    by_name = find_query("top_items_per_genre")
    assert by_name.qualified_name == "analyst/top_items_per_genre"
    assert find_query("analyst/top_items_per_genre") == by_name
    assert find_query("support/why_recommended.cypher").name == "why_recommended"
    assert by_name.path is not None
    assert find_query(str(by_name.path)) == by_name


def test_unknown_names_suggest_close_matches() -> None:
    with pytest.raises(
        KgrecError, match=r"no query named 'top_item_per_genre'\..*top_items_per_genre"
    ):
        find_query("top_item_per_genre")
    with pytest.raises(KgrecError, match="Cypher file not found"):
        find_query("nowhere/nothing.cypher")


def test_same_name_in_two_folders_must_be_qualified(tmp_path: Path) -> None:
    for folder in ("analyst", "support", "load"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.cypher").write_text("// purpose: X.\nRETURN 1\n")
    assert len(list_queries(tmp_path)) == 2
    with pytest.raises(KgrecError, match=r"ambiguous.*analyst/x, support/x"):
        find_query("x", tmp_path)
    assert find_query("support/x", tmp_path).purpose == "X."


def test_resolve_query_tells_names_from_inline_cypher() -> None:
    assert resolve_query("similar_users").name == "similar_users"
    inline = resolve_query("MATCH (u:User {id: $user}) RETURN u.id")
    assert inline.name == "inline query"
    assert [p.name for p in inline.params] == ["user"]


# --------------------------------------------------------------------------- binding


def test_defaults_are_filled_and_values_coerced() -> None:
    query = find_query("similar_users")
    assert bind_params(query, {"user": 12}) == {"user": "12", "limit": 10, "split": "train"}
    assert bind_params(query, {"user": "u1", "limit": "3", "split": "all"})["limit"] == 3
    tail = find_query("long_tail_exposure")
    assert bind_params(tail, {"head_share": "0.1"})["head_share"] == 0.1
    assert bind_params(tail, {"head_share": 1})["head_share"] == 1.0
    flag = parse_query("// params: on (bool, default false)\nRETURN $on")
    assert bind_params(flag, {"on": "yes"}) == {"on": True}
    assert bind_params(flag, {}) == {"on": False}


def test_missing_required_parameter_names_query_parameter_and_example() -> None:
    with pytest.raises(KgrecError) as info:
        bind_params(find_query("why_recommended"), {"user": "u0001"})
    message = str(info.value)
    assert "support/why_recommended needs parameter(s) item (-p item=...)" in message
    assert "Example: kgrec cypher run why_recommended -p user=u0001 -p item=i0042" in message


def test_unknown_parameter_is_refused_with_a_suggestion() -> None:
    with pytest.raises(KgrecError, match="has no parameter limt \\(did you mean limit\\?\\)"):
        bind_params(find_query("similar_users"), {"user": "u1", "limt": 5})


@pytest.mark.parametrize(
    ("name", "given", "message"),
    [
        ("similar_users", {"user": "u1", "limit": "five"}, "limit must be an int, got 'five'"),
        ("similar_users", {"user": "u1", "limit": 2.5}, "limit must be an int"),
        ("similar_users", {"user": "u1", "limit": True}, "limit must be an int"),
        ("long_tail_exposure", {"head_share": "lots"}, "head_share must be a number"),
        ("long_tail_exposure", {"head_share": "nan"}, "head_share must be a number"),
        ("similar_users", {"user": ["u1"]}, "user must be a string"),
        ("similar_users", {"user": None}, "needs parameter"),
    ],
)
def test_ill_typed_values_are_clear_errors(name: str, given: dict[str, Any], message: str) -> None:
    with pytest.raises(KgrecError, match=message) as info:
        bind_params(find_query(name), given)
    assert "Example: kgrec cypher run" in str(info.value)


# --------------------------------------------------------------------------- every query


def check_top_items_per_genre(store: FalkorDBStore, demo: Demo) -> None:
    counts = demo.item_counts()
    frame = demo.item_genre.assign(n=demo.item_genre["item_id"].map(counts))
    frame = frame.sort_values(["genre", "n", "item_id"], ascending=[True, False, True])
    expected = frame.groupby("genre").head(3)
    rows = run(store, "top_items_per_genre", limit=3)
    assert [(r["genre"], r["item"], r["interactions"]) for r in rows] == list(
        expected[["genre", "item_id", "n"]].itertuples(index=False, name=None)
    )
    assert [r["rank"] for r in rows[:3]] == [1, 2, 3]
    drama = expected[expected["genre"] == "genre:drama"]["item_id"].tolist()
    for genre in ("genre:drama", "Drama", "drama"):
        got = run(store, "top_items_per_genre", genre=genre, limit=3)
        assert [r["item"] for r in got] == drama
    # all splits: equals the raw CSV count
    raw = demo.inter.groupby("item_id").size()
    top = run(store, "top_items_per_genre", genre="genre:crime", limit=1, split="all")[0]
    crime = demo.item_genre[demo.item_genre["genre"] == "genre:crime"]["item_id"]
    assert top["interactions"] == raw.reindex(crime).max()


def check_similar_users(store: FalkorDBStore, demo: Demo) -> None:
    sets = demo.train.groupby("user_id")["item_id"].agg(set)
    mine = sets["u0001"]
    rows = []
    for user, theirs in sets.items():
        shared = len(mine & theirs)
        if user != "u0001" and shared:
            union = len(mine) + len(theirs) - shared
            rows.append((user, shared, len(mine), len(theirs), shared / union))
    rows.sort(key=lambda r: (-r[4], -r[1], r[0]))
    got = run(store, "similar_users", user="u0001", limit=15)
    assert [(r["user"], r["shared"], r["mine"], r["theirs"]) for r in got] == [
        r[:4] for r in rows[:15]
    ]
    assert [r["jaccard"] for r in got] == pytest.approx([r[4] for r in rows[:15]])
    assert run(store, "similar_users", user="nobody") == []


def check_items_never_recommended(store: FalkorDBStore, demo: Demo) -> None:
    ranked = demo.ranked_items()

    def expected(recs: pd.DataFrame) -> list[tuple[str, int]]:
        left = ranked[~ranked["item_id"].isin(recs["item_id"])]
        return list(left[["item_id", "n"]].itertuples(index=False, name=None))

    got = run(store, "items_never_recommended", limit=1000)
    assert [(r["item"], r["interactions"]) for r in got] == expected(demo.recs)
    assert len(got) == 400 - demo.recs["item_id"].nunique()
    m2 = run(store, "items_never_recommended", model_id="m2", limit=1000)
    assert [r["item"] for r in m2] == [
        i for i, _ in expected(demo.recs[demo.recs.model_id == "m2"])
    ]
    since = demo.recs[demo.recs["at"] >= "2024-06-02"]
    got = run(store, "items_never_recommended", since="2024-06-02", limit=5)
    assert [(r["item"], r["interactions"]) for r in got] == expected(since)[:5]


def check_recommendation_coverage_per_genre(store: FalkorDBStore, demo: Demo) -> None:
    for model_id in (None, "m1"):
        recs = demo.recs if model_id is None else demo.recs[demo.recs["model_id"] == model_id]
        per_item = recs.groupby("item_id").size()
        frame = demo.item_genre.assign(
            recs=demo.item_genre["item_id"].map(per_item).fillna(0).astype(int)
        )
        table = frame.groupby("genre").agg(
            items=("item_id", "size"),
            recommended_items=("recs", lambda s: int((s > 0).sum())),
            recommendations=("recs", "sum"),
        )
        table["coverage"] = table["recommended_items"] / table["items"]
        table["share"] = table["recommendations"] / len(recs)
        table = table.reset_index().sort_values(["coverage", "genre"], ascending=[False, True])
        got = run(store, "recommendation_coverage_per_genre", model_id=model_id)
        assert [
            (r["genre"], r["items"], r["recommended_items"], r["recommendations"]) for r in got
        ] == list(
            table[["genre", "items", "recommended_items", "recommendations"]].itertuples(
                index=False, name=None
            )
        )
        assert [r["coverage"] for r in got] == pytest.approx(table["coverage"].tolist())
        assert [r["recommendation_share"] for r in got] == pytest.approx(table["share"].tolist())
    nothing = run(store, "recommendation_coverage_per_genre", model_id="no-such-model")
    assert {r["recommendations"] for r in nothing} == {0}
    assert {r["recommendation_share"] for r in nothing} == {None}


def _adjacency(demo: Demo) -> dict[str, list[tuple[int, str]]]:
    """Undirected multigraph of train interactions and triples: node -> [(edge id, other)]."""
    edges = list(demo.train[["user_id", "item_id"]].itertuples(index=False, name=None))
    edges += list(demo.triples[["head", "tail"]].itertuples(index=False, name=None))
    adjacency: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for k, (a, b) in enumerate(edges):
        adjacency[a].append((k, b))
        adjacency[b].append((k, a))
    return adjacency


def _paths(adj: dict[str, list[tuple[int, str]]], start: str, end: str) -> list[tuple[str, ...]]:
    """Every walk of 1-3 hops from ``start`` to ``end`` using no edge twice (Cypher semantics)."""
    found = []
    stack: list[tuple[tuple[str, ...], frozenset[int]]] = [((start,), frozenset())]
    while stack:
        nodes, used = stack.pop()
        for edge, other in adj[nodes[-1]]:
            if edge in used:
                continue
            if other == end:
                found.append((*nodes, other))
            if len(nodes) < 3:
                stack.append(((*nodes, other), used | {edge}))
    return found


def check_paths_between(store: FalkorDBStore, demo: Demo) -> None:
    adj = _adjacency(demo)
    seen = set(demo.train.loc[demo.train["user_id"] == "u0001", "item_id"])
    liked = sorted(seen)[0]
    unseen = next(i for i in demo.items["item_id"] if i not in seen)
    for item, shortest in ((liked, 1), (unseen, 3)):
        expected = sorted(_paths(adj, "u0001", item), key=lambda p: (len(p), p))
        got = run(store, "paths_between", user="u0001", item=item, limit=100_000)
        assert [tuple(r["nodes"]) for r in got] == expected
        assert got[0]["hops"] == shortest
        assert all(r["hops"] == len(r["relationships"]) <= 3 for r in got)
        first = run(store, "paths_between", user="u0001", item=item, limit=3)
        assert [r["nodes"] for r in first] == [list(p) for p in expected[:3]]
    kg = next(r for r in got if r["relationships"][1] in ("HAS_GENRE", "DIRECTED_BY"))
    assert (
        kg["names"][0] == "u0001"
        and kg["names"][2] == demo.entities.set_index("entity_id").at[kg["nodes"][2], "name"]
    )
    # recorded recommendations are not followed: u0003 -RECOMMENDED-> i0400 is no 1-hop path
    direct = run(store, "paths_between", user="u0003", item="i0400", limit=5)
    assert all(r["relationships"] != ["RECOMMENDED"] for r in direct)


def check_long_tail_exposure(store: FalkorDBStore, demo: Demo) -> None:
    ranked = demo.ranked_items()
    for share in (0.2, 0.5):
        head = ranked["item_id"].iloc[: math.ceil(share * len(ranked))]
        tail = ranked[~ranked["item_id"].isin(head)]
        tail_recs = int((~demo.recs["item_id"].isin(head)).sum())
        inter_share = tail["n"].sum() / ranked["n"].sum()
        rec_share = tail_recs / len(demo.recs)
        (row,) = run(store, "long_tail_exposure", head_share=share)
        assert row["items"] == 400
        assert row["tail_items"] == len(tail)
        assert row["interactions"] == len(demo.train)
        assert row["tail_interactions"] == tail["n"].sum()
        assert row["recommendations"] == len(demo.recs)
        assert row["tail_recommendations"] == tail_recs
        assert row["tail_interaction_share"] == pytest.approx(inter_share)
        assert row["tail_recommendation_share"] == pytest.approx(rec_share)
        assert row["exposure_ratio"] == pytest.approx(rec_share / inter_share)
    (none,) = run(store, "long_tail_exposure", model_id="no-such-model")
    assert none["recommendations"] == 0
    assert none["tail_recommendation_share"] is None and none["exposure_ratio"] is None


def check_interactions_per_genre(store: FalkorDBStore, demo: Demo) -> None:
    for split, inter in (("train", demo.train), ("all", demo.inter)):
        merged = demo.item_genre.merge(inter, on="item_id", how="left")
        table = merged.groupby("genre").agg(
            items=("item_id", "nunique"),
            interactions=("user_id", "count"),
            users=("user_id", "nunique"),
            mean_rating=("rating", "mean"),
        )
        table = table.reset_index().sort_values(["interactions", "genre"], ascending=[False, True])
        got = run(store, "interactions_per_genre", split=split)
        assert [(r["genre"], r["items"], r["interactions"], r["users"]) for r in got] == list(
            table[["genre", "items", "interactions", "users"]].itertuples(index=False, name=None)
        )
        assert [r["mean_rating"] for r in got] == pytest.approx(table["mean_rating"].tolist())
    names = dict(demo.entities[["entity_id", "name"]].itertuples(index=False, name=None))
    assert all(r["name"] == names[r["genre"]] for r in got)


def check_item_popularity(store: FalkorDBStore, demo: Demo) -> None:
    ranked = demo.ranked_items()
    recs = demo.recs.groupby("item_id").size()
    got = run(store, "item_popularity")
    assert [(r["item"], r["interactions"], r["recommended"]) for r in got] == [
        (i, n, int(recs.get(i, 0))) for i, n in ranked[["item_id", "n"]].itertuples(index=False)
    ]
    titles = dict(demo.items[["item_id", "title"]].itertuples(index=False, name=None))
    assert all(r["title"] == titles[r["item"]] for r in got)
    m2 = run(store, "item_popularity", model_id="m2")
    assert sum(r["recommended"] for r in m2) == int((demo.recs["model_id"] == "m2").sum())


def check_why_recommended(store: FalkorDBStore, demo: Demo) -> None:
    """One readable row per reason (no JSON inside), newest recording first."""
    got = run(store, "why_recommended", user="u0001", item="i0002")
    mine = [r for r in RECS if (r["user"], r["item"]) == ("u0001", "i0002")]
    mine.sort(key=lambda r: str(r["at"]), reverse=True)
    titles = dict(demo.items[["item_id", "title"]].itertuples(index=False, name=None))
    assert [
        (r["at"], r["model_id"], r["request_id"], r["rank"], r["score"], r["reason"], r["share"])
        for r in got
    ] == [
        (r["at"], r["model_id"], r["request_id"], r["rank"], r["score"], reason, share)
        for r in mine
        for reason, share in zip(r["reasons"], r["shares"], strict=True)
    ]
    assert {r["title"] for r in got} == {titles["i0002"]}
    assert set(got[0]) == {"at", "rank", "title", "reason", "share", "score", "model_id",
                           "request_id"}  # fmt: skip
    assert [r["reason"] for r in run(store, "why_recommended", user="u0001", item="i0002",
                                     model_id="m1")] == mine[1]["reasons"]  # fmt: skip
    (bare,) = run(store, "why_recommended", user="u0003", item="i0161")  # no reasons
    assert (bare["rank"], bare["reason"], bare["share"]) == (1, None, None)
    assert run(store, "why_recommended", user="u0001", item="i0400") == []


def check_recommendations_for_user(store: FalkorDBStore, demo: Demo) -> None:
    mine = demo.recs[demo.recs["user_id"] == "u0001"].sort_values(
        ["at", "request_id", "rank"], ascending=[False, True, True]
    )
    seen = set(demo.inter.loc[demo.inter["user_id"] == "u0001", "item_id"])
    got = run(store, "recommendations_for_user", user="u0001")
    assert [(r["request_id"], r["rank"], r["item"], r["interacted"]) for r in got] == [
        (q, k, i, i in seen)
        for q, k, i in mine[["request_id", "rank", "item_id"]].itertuples(index=False)
    ]
    assert [r["item"] for r in run(store, "recommendations_for_user", user="u0001",
                                   since="2024-06-02")] == ["i0002"]  # fmt: skip


def check_user_history(store: FalkorDBStore, demo: Demo) -> None:
    mine = demo.inter[demo.inter["user_id"] == "u0001"].sort_values(
        ["timestamp", "item_id"], ascending=[False, True]
    )
    got = run(store, "user_history", user="u0001", limit=1000)
    assert [(r["item"], r["rating"], r["timestamp"], r["split"]) for r in got] == list(
        mine[["item_id", "rating", "timestamp", "split"]].itertuples(index=False, name=None)
    )
    assert len(run(store, "user_history", user="u0001", limit=4)) == 4


def check_served_genre_mix(store: FalkorDBStore, demo: Demo) -> None:
    def expected(user: str, request: str, split: str) -> list[tuple[str, int, float, int, Any]]:
        served = set(demo.recs.loc[demo.recs["request_id"] == request, "item_id"])
        inter = demo.inter if split == "all" else demo.inter[demo.inter["split"] == split]
        history = set(inter.loc[inter["user_id"] == user, "item_id"])
        rows = []
        for genre, items in demo.item_genre.groupby("genre")["item_id"]:
            s, h = len(served & set(items)), len(history & set(items))
            if s or h:
                rows.append((genre, s, s / len(served), h, h / len(history) if history else None))
        return sorted(rows, key=lambda r: (-r[1], -r[3], r[0]))

    for user, request, args in (
        ("u0002", "r5", {}),  # the latest list is the default
        ("u0001", "r2", {}),
        ("u0001", "r1", {"request_id": "r1", "split": "train"}),
        ("u0001", "r1", {"model_id": "m1"}),
    ):
        got = run(store, "served_genre_mix", user=user, **args)
        want = expected(user, request, args.get("split", "all"))
        assert got and sum(r["served_items"] for r in got) >= 1
        assert [(r["genre"], r["served_items"], r["history_items"]) for r in got] == [
            (g, s, h) for g, s, _, h, _ in want
        ]
        assert [r["served_share"] for r in got] == pytest.approx([w[2] for w in want])
        assert [r["history_share"] for r in got] == pytest.approx([w[4] for w in want])
        assert {r["request_id"] for r in got} == {request}
    assert run(store, "served_genre_mix", user="u0100") == []  # never served


def check_exposure_by_person(store: FalkorDBStore, demo: Demo) -> None:
    counts = demo.item_counts()
    recs = demo.recs.groupby("item_id").size().reindex(counts.index, fill_value=0)
    cases: list[tuple[str, dict[str, Any]]] = [
        ("directed_by", {}),
        ("starring", {"relation": "STARRING"}),
        ("directed_by", {"relation": "Directed_By", "split": "all"}),
    ]
    for relation, given in cases:
        inter = counts if given.get("split") != "all" else demo.inter.groupby("item_id").size()
        inter = inter.reindex(counts.index, fill_value=0)
        links = demo.triples[demo.triples["relation"] == relation]
        frame = pd.DataFrame({"person": links["tail"].to_numpy(), "item": links["head"].to_numpy()})
        frame["n"] = frame["item"].map(inter)
        frame["r"] = frame["item"].map(recs)
        table = frame.groupby("person").agg(items=("item", "size"), n=("n", "sum"), r=("r", "sum"))
        table = table.reset_index().sort_values(
            ["n", "r", "person"], ascending=[False, False, True]
        )
        got = run(store, "exposure_by_person", limit=10_000, **given)
        assert [
            (r["person"], r["items"], r["interactions"], r["recommendations"]) for r in got
        ] == [(p, int(i), int(n), int(r)) for p, i, n, r in table.itertuples(index=False)]
        share_i = table["n"] / inter.sum()
        share_r = table["r"] / len(demo.recs)
        assert [r["interaction_share"] for r in got] == pytest.approx(share_i.tolist())
        assert [r["recommendation_share"] for r in got] == pytest.approx(share_r.tolist())
        ratio = [r["exposure_ratio"] for r in got if r["exposure_ratio"] is not None]
        assert ratio == pytest.approx((share_r / share_i)[share_i > 0].tolist())
    names = dict(demo.entities[["entity_id", "name"]].itertuples(index=False, name=None))
    top = run(store, "exposure_by_person", limit=3)
    assert len(top) == 3 and all(r["name"] == names[r["person"]] for r in top)
    (none,) = run(store, "exposure_by_person", model_id="no-such-model", limit=1)
    assert none["recommendations"] == 0 and none["exposure_ratio"] is None


def check_co_recommended_pairs(store: FalkorDBStore, demo: Demo) -> None:
    def expected(recs: pd.DataFrame, min_lists: int = 1) -> list[tuple[str, str, int, float]]:
        lists = recs.groupby("request_id")["item_id"].agg(lambda s: sorted(set(s)))
        pairs: dict[tuple[str, str], int] = defaultdict(int)
        for items in lists:
            for pair in itertools.combinations(items, 2):
                pairs[pair] += 1
        rows = [(a, b, n, n / len(lists)) for (a, b), n in pairs.items() if n >= min_lists]
        return sorted(rows, key=lambda r: (-r[2], r[0], r[1]))

    def check(got_rows: list[dict[str, Any]], want: list[tuple[str, str, int, float]]) -> None:
        assert [(r["item_a"], r["item_b"], r["lists"]) for r in got_rows] == [w[:3] for w in want]
        assert [r["list_share"] for r in got_rows] == pytest.approx([w[3] for w in want])

    full = expected(demo.recs)
    assert full[0][:3] == ("i0002", "i0005", 2)  # served together in r1 and r5
    check(run(store, "co_recommended_pairs", limit=100), full)
    check(run(store, "co_recommended_pairs", min_lists=2), expected(demo.recs, 2))
    m2 = demo.recs[demo.recs["model_id"] == "m2"]
    check(run(store, "co_recommended_pairs", model_id="m2", limit=2), expected(m2)[:2])
    assert run(store, "co_recommended_pairs", since="2024-06-05") == []
    titles = dict(demo.items[["item_id", "title"]].itertuples(index=False, name=None))
    first = run(store, "co_recommended_pairs", limit=1)[0]
    assert (first["title_a"], first["title_b"]) == (titles["i0002"], titles["i0005"])


def check_never_recommended_summary(store: FalkorDBStore, demo: Demo) -> None:
    counts = demo.item_counts()
    cases: list[tuple[dict[str, Any], pd.DataFrame]] = [
        ({}, demo.recs),
        ({"model_id": "m1"}, demo.recs[demo.recs["model_id"] == "m1"]),
        ({"since": "2024-06-02"}, demo.recs[demo.recs["at"] >= "2024-06-02"]),
    ]
    for given, recs in cases:
        never = ~counts.index.isin(recs["item_id"])
        (row,) = run(store, "never_recommended_summary", **given)
        assert row["items"] == 400
        assert row["never_recommended"] == int(never.sum())
        assert row["recommended_items"] == recs["item_id"].nunique()
        assert row["never_recommended_share"] == pytest.approx(never.mean())
        assert row["interactions"] == len(demo.train)
        assert row["never_recommended_interactions"] == int(counts[never].sum())
        assert row["never_recommended_interaction_share"] == pytest.approx(
            counts[never].sum() / len(demo.train)
        )
    (nothing,) = run(store, "never_recommended_summary", model_id="no-such-model", split="all")
    assert nothing["never_recommended"] == 400 and nothing["interactions"] == len(demo.inter)


CHECKS: dict[str, Callable[[FalkorDBStore, Demo], None]] = {
    "top_items_per_genre": check_top_items_per_genre,
    "similar_users": check_similar_users,
    "items_never_recommended": check_items_never_recommended,
    "recommendation_coverage_per_genre": check_recommendation_coverage_per_genre,
    "paths_between": check_paths_between,
    "long_tail_exposure": check_long_tail_exposure,
    "interactions_per_genre": check_interactions_per_genre,
    "item_popularity": check_item_popularity,
    "why_recommended": check_why_recommended,
    "recommendations_for_user": check_recommendations_for_user,
    "user_history": check_user_history,
    "served_genre_mix": check_served_genre_mix,
    "exposure_by_person": check_exposure_by_person,
    "co_recommended_pairs": check_co_recommended_pairs,
    "never_recommended_summary": check_never_recommended_summary,
}


def test_every_library_query_has_a_check() -> None:
    assert sorted(CHECKS) == sorted(q.name for q in list_queries())


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_query_results_equal_pandas(store: FalkorDBStore, demo: Demo, name: str) -> None:
    CHECKS[name](store, demo)


def test_hostile_values_stay_values(store: FalkorDBStore) -> None:
    before = store.counts()
    for query in list_queries():
        given = {p.name: HOSTILE for p in query.params if p.type == "string" and p.name != "split"}
        result = run_query(store, query, given)
        assert all(HOSTILE not in json.dumps(row) for row in result.rows), query.name
    assert run(store, "similar_users", user=HOSTILE) == []
    assert run(store, "top_items_per_genre", genre=HOSTILE) == []
    assert store.counts() == before
    assert before.nodes["User"] == 400


def test_split_check_matches_the_loaded_graph(store: FalkorDBStore, demo: Demo) -> None:
    rows = store.query(
        "MATCH (:User)-[r:INTERACTED]->() RETURN r.split AS split, count(r) AS n ORDER BY split"
    ).rows
    assert rows == [[s, int(n)] for s, n in demo.inter.groupby("split").size().sort_index().items()]
