"""The ``neo4j-admin database import`` export: files checked against the documented header
rules of Neo4j's import tool, values read back equal to the graph kgrec loads, and the CLI."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kgrec.cli import app
from kgrec.config import SplitConfig
from kgrec.data.contract import read_folder
from kgrec.data.split import split_interactions
from kgrec.data.validate import validate
from kgrec.errors import KgrecError
from kgrec.store.base import GraphPayload, NodeSet, RelationshipSet
from kgrec.store.neo4j_import import write_neo4j_import
from kgrec.store.rows import property_columns

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"

# The header rules of the import tool (Neo4j 5 Operations Manual, "CSV header format"):
# <name>:<field_type>; property types, optionally arrays with []; no type means string.
PROPERTY_TYPES = {
    "int", "long", "float", "double", "boolean", "byte", "short", "char", "string",
    "point", "date", "localtime", "time", "localdatetime", "datetime", "duration",
}  # fmt: skip
SPECIAL = re.compile(r"^(ID|START_ID|END_ID)(?:\((?P<group>[^()]+)\))?$|^(LABEL|TYPE|IGNORE)$")


def parse_header(header: list[str]) -> list[tuple[str, str, str | None]]:
    """``(name, field type, id group)`` per field, enforcing the documented rules."""
    fields = []
    for item in header:
        name, sep, kind = item.rpartition(":")
        if not sep:
            name, kind = item, "string"
        special = SPECIAL.match(kind)
        if special:
            kind_name = kind.split("(")[0]
            group = special.group("group")
            if kind_name in ("LABEL", "TYPE", "START_ID", "END_ID", "IGNORE"):
                assert name == "", f"{item}: the name of a {kind_name} field is ignored"
            fields.append((name, kind_name, group))
            continue
        base = kind.removesuffix("[]")
        assert base in PROPERTY_TYPES, f"{item}: unknown property type {kind!r}"
        assert name, f"{item}: a property needs a name"
        fields.append((name, base, None))
    return fields


def read_export(folder: Path) -> tuple[dict[str, dict[str, dict[str, Any]]], list[Any]]:
    """Nodes ``{group: {id: {label, props}}}`` and relationships, read back like the
    import tool reads them (every documented rule checked on the way)."""
    nodes: dict[str, dict[str, dict[str, Any]]] = {}
    relationships = []
    for path in sorted(folder.glob("nodes_*.csv")):
        with path.open(newline="", encoding="utf-8") as stream:
            rows = list(csv.reader(stream))
        fields = parse_header(rows[0])
        ids = [k for k, f in enumerate(fields) if f[1] == "ID"]
        assert len(ids) == 1, f"{path.name}: exactly one ID field"
        labels = [k for k, f in enumerate(fields) if f[1] == "LABEL"]
        group = fields[ids[0]][2]
        assert group and group not in nodes, f"{path.name}: its own ID space"
        nodes[group] = {}
        for row in rows[1:]:
            assert len(row) == len(fields), f"{path.name}: {row}"
            node_id = row[ids[0]]
            assert node_id not in nodes[group], f"duplicate id {node_id} in {group}"
            props = {fields[ids[0]][0]: node_id, **_props(fields, row)}
            nodes[group][node_id] = {"label": row[labels[0]], "props": props}
    for path in sorted(folder.glob("relationships_*.csv")):
        with path.open(newline="", encoding="utf-8") as stream:
            rows = list(csv.reader(stream))
        fields = parse_header(rows[0])
        kinds = [f[1] for f in fields]
        assert kinds.count("START_ID") == 1 and kinds.count("END_ID") == 1 and "TYPE" in kinds
        start, end = kinds.index("START_ID"), kinds.index("END_ID")
        for row in rows[1:]:
            assert len(row) == len(fields)
            source = nodes[fields[start][2]][row[start]]  # endpoint exists in its ID space
            target = nodes[fields[end][2]][row[end]]
            relationships.append(
                (row[kinds.index("TYPE")], source["label"], row[start], target["label"],
                 row[end], _props(fields, row))
            )  # fmt: skip
    return nodes, relationships


def _props(fields: list[tuple[str, str, str | None]], row: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for (name, kind, _), value in zip(fields, row, strict=True):
        if kind in ("ID", "LABEL", "TYPE", "START_ID", "END_ID", "IGNORE") or value == "":
            continue  # an empty field sets no property
        parse = {"long": int, "int": int, "double": float, "float": float}.get(kind, str)
        out[name] = (value == "true") if kind == "boolean" else parse(value)
    return out


def expected_nodes(payload: GraphPayload) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for node_set in payload.nodes:
        columns = property_columns(node_set.frame, ("id",))
        for k, node_id in enumerate(node_set.frame["id"].astype(str)):
            props = {c: v[k] for c, v in columns.items() if v[k] is not None}
            out[(node_set.label, node_id)] = {"id": node_id, **props}
    return out


@pytest.fixture(scope="module")
def demo_payload() -> GraphPayload:
    dataset = validate(read_folder(DEMO))
    return payload_from(dataset)


def payload_from(dataset: Any) -> GraphPayload:
    from kgrec.store.payload import payload_from_dataset

    return payload_from_dataset(dataset, split_interactions(dataset.interactions, SplitConfig()))


def test_export_follows_the_header_rules_and_reads_back_as_the_graph(
    demo_payload: GraphPayload, tmp_path: Path
) -> None:
    result = write_neo4j_import(demo_payload, tmp_path / "out")
    nodes, rels = read_export(tmp_path / "out")
    got = {(n["label"], i): n["props"] for group in nodes.values() for i, n in group.items()}
    assert got == expected_nodes(demo_payload)
    counts = demo_payload.expected_counts()
    assert {g: len(v) for g, v in nodes.items()} == counts.nodes
    by_type: dict[str, int] = {}
    for rel in rels:
        by_type[rel[0]] = by_type.get(rel[0], 0) + 1
    assert by_type == counts.relationships
    inter = demo_payload.relationships[0].frame.iloc[7]
    row = next(
        r for r in rels if r[0] == "INTERACTED" and r[2:5:2] == (inter["source"], inter["target"])
    )
    assert row[5] == {
        "rating": inter["rating"],
        "timestamp": int(inter["timestamp"]),
        "split": inter["split"],
    }
    headers = {Path(f.path).name: f.header for f in result.files}
    assert headers["nodes_User.csv"][:2] == ["id:ID(User)", ":LABEL"]
    assert "age:long" in headers["nodes_User.csv"] and "title:string" in headers["nodes_Item.csv"]
    assert headers["relationships_INTERACTED_User_Item.csv"] == [
        ":START_ID(User)", ":END_ID(Item)", ":TYPE", "rating:double", "timestamp:long",
        "split:string",
    ]  # fmt: skip


def test_awkward_values_survive_quoting_and_the_command_names_every_file(tmp_path: Path) -> None:
    users = pd.DataFrame(
        {
            "id": ["u,1", 'u"2', "u3"],
            "bio": ["line one\nline two", 'says "hi", twice', None],
            "vip": [True, False, None],
            "score": ["1.5", "2", None],
        }
    )
    items = pd.DataFrame({"id": ["i1", "u3"], "title": ["1984", "Same id, other label"]})
    rels = pd.DataFrame({"source": ["u,1", 'u"2'], "target": ["i1", "u3"], "w": [1, 2**40]})
    payload = GraphPayload(
        (NodeSet("User", users), NodeSet("Item", items)),
        (RelationshipSet("LIKES", "User", "Item", rels),),
    )
    result = write_neo4j_import(payload, tmp_path / "out", database="movies")
    nodes, found = read_export(tmp_path / "out")
    assert nodes["User"]["u,1"]["props"] == {
        "id": "u,1",
        "bio": "line one\nline two",
        "vip": True,
        "score": 1.5,
    }
    assert nodes["User"]['u"2']["props"]["bio"] == 'says "hi", twice'
    assert nodes["User"]["u3"]["props"] == {"id": "u3"}  # missing values set nothing
    assert nodes["Item"]["u3"]["props"]["title"] == "Same id, other label"  # its own ID space
    assert sorted((r[2], r[4], r[5]["w"]) for r in found) == [
        ('u"2', "u3", 2**40),
        ("u,1", "i1", 1),
    ]
    assert result.multiline and result.command.endswith("--multiline-fields=true")
    words = result.command.split()
    assert words[:5] == ["neo4j-admin", "database", "import", "full", "movies"]
    assert [w.split("=")[0] for w in words[5:7]] == ["--nodes", "--nodes"]
    assert {w.split("=", 1)[1].strip("'") for w in words[5:8]} == {f.path for f in result.files}
    assert (tmp_path / "out" / "import.txt").read_text().strip() == result.command
    assert (
        "FOR (n:User) REQUIRE n.id IS UNIQUE"
        in (tmp_path / "out" / "constraints.cypher").read_text()
    )
    with pytest.raises(KgrecError, match="already holds CSV files"):
        write_neo4j_import(payload, tmp_path / "out")


def test_large_relationship_sets_are_written_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kgrec.store import neo4j_import

    monkeypatch.setattr(neo4j_import, "CHUNK_ROWS", 1_000)
    n = 3_500
    users = pd.DataFrame({"id": [f"u{k}" for k in range(n)]})
    rels = pd.DataFrame(
        {
            "source": users["id"],
            "target": users["id"].iloc[::-1].to_numpy(),
            "at": pd.array(np.where(np.arange(n) % 7 == 0, None, np.arange(n)), dtype="Int64"),
        }
    )
    payload = GraphPayload(
        (NodeSet("User", users),), (RelationshipSet("NEXT", "User", "User", rels),)
    )
    write_neo4j_import(payload, tmp_path / "out")
    _, found = read_export(tmp_path / "out")
    assert len(found) == n
    assert sum("at" in r[5] for r in found) == n - len(range(0, n, 7))
    assert all(r[5].get("at", int(r[2][1:])) == int(r[2][1:]) for r in found)


def test_cli_exports_what_build_graph_loads(tmp_path: Path) -> None:
    runner = CliRunner()
    artifacts = tmp_path / "artifacts"
    built = runner.invoke(
        app,
        ["build-graph", "--data", str(DEMO), "--artifacts", str(artifacts), "--no-db", "--json"],
    )
    assert built.exit_code == 0, built.output
    out = tmp_path / "neo4j"
    result = runner.invoke(
        app, ["db", "export", "--artifacts", str(artifacts), "--neo4j-import", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["command"].startswith("neo4j-admin database import full neo4j --nodes=")
    dataset = validate(read_folder(DEMO))
    counts = payload_from(dataset).expected_counts()
    nodes, rels = read_export(out)
    assert {g: len(v) for g, v in nodes.items()} == counts.nodes
    assert len(rels) == sum(counts.relationships.values())
    again = runner.invoke(
        app, ["db", "export", "--artifacts", str(artifacts), "--neo4j-import", str(out)]
    )
    assert again.exit_code != 0 and "already holds CSV files" in again.output
    assert "Traceback" not in again.output
    missing = runner.invoke(
        app, ["db", "export", "--artifacts", str(tmp_path / "no"), "--neo4j-import", str(out)]
    )
    assert missing.exit_code != 0 and "build-graph" in missing.output
