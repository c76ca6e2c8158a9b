"""One normaliser for relations and node types; the graph database's names derive from it."""

from __future__ import annotations

import pytest

from kgrec.errors import StoreError
from kgrec.naming import (
    check_identifier,
    label_for_type,
    rel_type_for_relation,
    relation_name,
    relation_words,
)


@pytest.mark.parametrize(
    ("raw", "snake"),
    [
        ("directed_by", "directed_by"),
        ("Directed By", "directed_by"),
        ("hasGenre", "has_genre"),
        ("produced-in", "produced_in"),
        ("  film.film.genre ", "film_film_genre"),
        ("Été", "t"),
        ("***", ""),
    ],
)
def test_relation_name_is_the_snake_form(raw: str, snake: str) -> None:
    assert relation_name(raw) == snake
    assert relation_name(snake) == snake  # idempotent


@pytest.mark.parametrize(
    "raw", ["directed_by", "directedBy", "Directed By", "film.film.genre", "2nd_unit", "x-y z"]
)
def test_relationship_types_derive_from_the_relation_name(raw: str) -> None:
    expected = relation_name(raw).upper()
    expected = f"R_{expected}" if expected[:1].isdigit() else expected
    assert rel_type_for_relation(raw) == expected
    assert rel_type_for_relation(relation_name(raw)) == expected


def test_labels_words_and_unsafe_names() -> None:
    assert label_for_type("content_rating") == "ContentRating"
    assert label_for_type("user") == "User"
    assert rel_type_for_relation("***") == "RELATED_TO"
    assert relation_words("directedBy") == "directed by"
    for bad in ("1abc", "a b", "x)-[:Y", ""):
        with pytest.raises(StoreError):
            check_identifier(bad)
