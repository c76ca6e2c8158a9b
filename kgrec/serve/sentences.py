"""Sentences for explanation paths: what support staff read ("Because you rated X, also ...").

Names are shown in ``*asterisks*``; entities without a name (Freebase ids) are described by
their relation instead ("with the same award nomination").
"""

from __future__ import annotations

from kgrec.naming import relation_words

GENRE_RELATIONS = frozenset({"has genre", "genre", "in genre"})


def attribute_sentence(
    rated: str, item: str, relation: str, entity_name: str, entity_id: str, item_is_head: bool
) -> str:
    """``user -> rated -relation-> entity <-relation- item``."""
    phrase = relation_phrase(relation, entity_name, entity_id, item_is_head)
    return f"Because you rated *{rated}*, also {phrase}"


def mixed_attribute_sentence(
    rated: str, item: str, relation: str, entity_name: str, entity_id: str, item_is_head: bool
) -> str:
    """As :func:`attribute_sentence` when ``rated`` reaches the entity by another relation."""
    phrase = relation_phrase(relation, entity_name, entity_id, item_is_head)
    return f"Because you rated *{rated}*: *{item}* is {phrase}"


def linked_sentence(rated: str, item: str, relation: str, rated_is_head: bool) -> str:
    """``user -> rated -relation- item`` (a knowledge-graph link between the two items)."""
    head, tail = (rated, item) if rated_is_head else (item, rated)
    return f"Because you rated *{rated}* (*{head}* {relation_words(relation)} *{tail}*)"


def collaborative_sentence(rated: str, item: str) -> str:
    """``user -> rated <- another user -> item`` (the other user is never named)."""
    return f"Because you rated *{rated}*: people who rated it also rated *{item}*"


def relation_phrase(relation: str, entity_name: str, entity_id: str, item_is_head: bool) -> str:
    """``directed_by`` + Michael Mann -> ``directed by Michael Mann``; a genre -> ``a Drama
    title``; an unnamed entity -> ``with the same award nomination``."""
    words = relation_words(relation)
    if words in GENRE_RELATIONS:
        article = "an" if entity_name[:1].lower() in "aeiou" else "a"
        return f"{article} {entity_name} title"
    if entity_name == entity_id:
        return f"with the same {words.removeprefix('has ')}"
    if not item_is_head:
        return f"linked to {entity_name} ({entity_name} {words} it)"
    return f"{words} {entity_name}"
