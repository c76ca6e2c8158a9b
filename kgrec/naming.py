"""Names shared by every layer: node types, relations, graph labels and relationship types.

One normaliser, :func:`relation_name`, gives the snake form used for node types and for PyG
relation names (``Directed By`` -> ``directed_by``, ``hasGenre`` -> ``has_genre``); the graph
database's names derive from it (``directed_by`` -> ``:DIRECTED_BY``, ``content_rating`` ->
``:ContentRating``). Labels and relationship types cannot be Cypher parameters, so
:func:`check_identifier` guards every name before it reaches query text.

Imports nothing but the standard library, so the torch-free serving path can use it.
"""

from __future__ import annotations

import re

from kgrec.errors import StoreError

USER, ITEM = "user", "item"
"""The two node types every dataset has; the others are entity types."""
IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
"""What a label or relationship type may look like (checked before use in query text)."""
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_NOT_SNAKE = re.compile(r"[^a-z0-9]+")


def relation_name(value: str) -> str:
    """The snake form of a relation or node type: ``Directed By`` -> ``directed_by``.

    ``""`` when ``value`` has no ASCII letter or digit.
    """
    text = _CAMEL.sub(r"\1_\2", value.strip())
    return _NOT_SNAKE.sub("_", text.lower()).strip("_")


def check_identifier(name: str) -> str:
    """Return ``name`` if it is a safe label/relationship type, else raise ``StoreError``."""
    if not IDENTIFIER.match(name):
        raise StoreError(f"refusing unsafe label or relationship type {name!r}")
    return name


def label_for_type(node_type: str) -> str:
    """Node label for a node type: ``user`` -> ``User``, ``content_rating`` -> ``ContentRating``."""
    parts = re.split(r"[^A-Za-z0-9]+", node_type)
    label = "".join(p[:1].upper() + p[1:] for p in parts if p)
    if label and label[0].isdigit():
        label = "T" + label
    return check_identifier(label or "Entity")


def rel_type_for_relation(relation: str) -> str:
    """Relationship type for a relation: ``directed_by`` / ``directedBy`` -> ``DIRECTED_BY``."""
    rel = relation_name(relation).upper()
    if rel and rel[0].isdigit():
        rel = "R_" + rel
    return check_identifier(rel or "RELATED_TO")


def relation_words(relation: str) -> str:
    """A relation as words for sentences: ``directed_by`` -> ``directed by``."""
    return relation_name(relation).replace("_", " ")
