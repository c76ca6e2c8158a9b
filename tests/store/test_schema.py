"""kgrec db schema's reader against the demo graph in the real embedded server, checked
against the demo CSVs read with pandas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from kgrec.config import SplitConfig
from kgrec.data.contract import read_folder
from kgrec.data.split import split_interactions
from kgrec.data.validate import validate
from kgrec.store.falkordb import FalkorDBStore
from kgrec.store.payload import payload_from_dataset
from kgrec.store.schema import GraphSchema, read_schema
from kgrec.store.server import FalkorDBServer

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"


@pytest.fixture(scope="module")
def schema(falkordb_home: Path) -> Iterator[GraphSchema]:
    dataset = validate(read_folder(DEMO))
    payload = payload_from_dataset(dataset, split_interactions(dataset.interactions, SplitConfig()))
    server = FalkorDBServer(falkordb_home)
    info = server.start()
    store = FalkorDBStore(info.host, info.port, server.password(), graph="t_schema")
    store.load(payload)
    # one director whose name is just its id, one with no name: neither counts as named
    store.query("MATCH (d:Director {id: 'director:d001'}) SET d.name = d.id", write=True)
    store.query("MATCH (d:Director {id: 'director:d002'}) SET d.name = null", write=True)
    yield read_schema(store)
    store._drop("t_schema")
    store.close()


def test_labels_counts_and_named_shares(schema: GraphSchema) -> None:
    entities = pd.read_csv(DEMO / "entities.csv", dtype=str)
    expected = {f":{t.capitalize()}": n for t, n in entities.groupby("type").size().items()}
    expected |= {":User": 400, ":Item": 400}
    assert {n.label: n.nodes for n in schema.labels} == expected
    assert [n.nodes for n in schema.labels] == sorted(
        (n.nodes for n in schema.labels), reverse=True
    )
    named = {n.label: n.named for n in schema.labels}
    assert named[":Item"] == 400 and named[":User"] == 0  # titles count, users have no name
    assert named[":Director"] == expected[":Director"] - 2
    genre = next(n for n in schema.labels if n.label == ":Genre")
    assert genre.named_share == 1.0


def test_property_types_are_the_stored_types(schema: GraphSchema) -> None:
    props = {n.label: {p.name: (p.types, p.holders) for p in n.properties} for n in schema.labels}
    assert props[":User"] == {
        "id": (("string",), 400),
        "age": (("integer",), 400),
        "occupation": (("string",), 400),
    }
    items = pd.read_csv(DEMO / "items.csv", dtype=str)
    assert props[":Item"]["year"] == (("integer",), int(items["year"].notna().sum()))
    assert props[":Item"]["title"] == (("string",), 400)
    assert list(props[":User"]) == ["id", "age", "occupation"]  # id first, then by name
    director = props[":Director"]["name"]
    assert director[1] == next(n.nodes for n in schema.labels if n.label == ":Director") - 1


def test_relationship_types_with_their_endpoints(schema: GraphSchema) -> None:
    triples = pd.read_csv(DEMO / "triples.csv", dtype=str)
    inter = pd.read_csv(DEMO / "interactions.csv", dtype=str)
    expected = {
        f"(:{h.capitalize()})-[:{r.upper()}]->(:{t.capitalize()})": n
        for (h, r, t), n in triples.groupby(["head_type", "relation", "tail_type"]).size().items()
    }
    expected["(:User)-[:INTERACTED]->(:Item)"] = len(inter)
    assert {r.pattern: r.relationships for r in schema.relationships} == expected
    interacted = next(r for r in schema.relationships if r.type == "INTERACTED")
    assert {p.name: p.types for p in interacted.properties} == {
        "rating": ("float",),
        "split": ("string",),
        "timestamp": ("integer",),
    }
    as_dict = schema.to_dict()
    assert as_dict["relationships"][0]["pattern"] == "(:User)-[:INTERACTED]->(:Item)"
    assert {"label", "nodes", "named", "named_share", "properties"} <= set(as_dict["labels"][0])
