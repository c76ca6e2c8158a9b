"""Query files: placeholders are filled only with checked names."""

from __future__ import annotations

import pytest

from kgrec.errors import KgrecError, StoreError
from kgrec.store.base import label_for_type, rel_type_for_relation
from kgrec.store.queries import cypher_dir, load_query


def test_placeholders_are_filled_with_checked_names() -> None:
    text = load_query("load/upsert_relationships", source="User", target="Item", type="LIKED")
    assert "MATCH (s:User {id: row.source})" in text
    assert "MERGE (s)-[r:LIKED]->(t)" in text
    assert "__" not in text


@pytest.mark.parametrize("name", ["Item) DETACH DELETE (n", "Item`", "1Item", "", "a" * 65])
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(StoreError, match="unsafe"):
        load_query("load/upsert_nodes", label=name)


def test_missing_placeholder_value_and_missing_file() -> None:
    with pytest.raises(KgrecError, match="needs"):
        load_query("load/upsert_nodes")
    with pytest.raises(KgrecError, match="missing"):
        load_query("load/no_such_query")


def test_every_cypher_file_starts_with_a_comment() -> None:
    files = sorted(cypher_dir().rglob("*.cypher"))
    assert files
    for path in files:
        assert path.read_text().startswith("//"), path


@pytest.mark.parametrize(
    ("node_type", "label"),
    [("user", "User"), ("content_rating", "ContentRating"), ("fb genre", "FbGenre")],
)
def test_labels_from_types(node_type: str, label: str) -> None:
    assert label_for_type(node_type) == label


def test_relationship_types_are_upper_snake() -> None:
    assert rel_type_for_relation("directedBy") == "DIRECTED_BY"
    assert rel_type_for_relation("film.film.genre") == "FILM_FILM_GENRE"


def test_neo4j_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from kgrec.store.neo4j import neo4j_settings

    monkeypatch.setenv("KGREC_NEO4J_URI", "bolt://127.0.0.1:7687")
    monkeypatch.setenv("KGREC_NEO4J_PASSWORD", "s3cret")
    monkeypatch.delenv("KGREC_NEO4J_USER", raising=False)
    assert neo4j_settings(None, "neo4j") == ("bolt://127.0.0.1:7687", "neo4j", "s3cret")
    with pytest.raises(StoreError, match="not a Neo4j URI"):
        neo4j_settings("http://example.org", "neo4j")
    monkeypatch.delenv("KGREC_NEO4J_URI")
    with pytest.raises(StoreError, match="KGREC_NEO4J_URI"):
        neo4j_settings(None, "neo4j")
