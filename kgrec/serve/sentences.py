"""Sentences for explanation paths ("Because you liked X, also directed by ...").

Customers read ``liked`` (a reason cites only items they liked; collaborative reasons say
"people who liked X also liked Y", naming no one); staff read ``rated`` and see every
contribution, an item the user rated below their own average marked as such. Names are shown
in ``*asterisks*``; entities without a readable name (Freebase ids) are described by their
relation instead ("with the same award nomination").
"""

from __future__ import annotations

from functools import lru_cache

from kgrec.naming import relation_words as _relation_words

relation_words = lru_cache(maxsize=1024)(_relation_words)

GENRE_RELATIONS = frozenset({"has genre", "genre", "in genre"})


BELOW_AVERAGE = " (rated below your average)"


def because(rated: str, verb: str = "rated", liked: bool = True) -> str:
    """``Because you liked *X*``; a staff sentence marks an item the user did not like."""
    return f"Because you {verb} *{rated}*" + ("" if liked else BELOW_AVERAGE)


def attribute_sentence(
    rated: str,
    item: str,
    relation: str,
    entity_name: str,
    entity_id: str,
    item_is_head: bool,
    start: str = "",
) -> str:
    """``user -> rated -relation-> entity <-relation- item``."""
    phrase = relation_phrase(relation, entity_name, entity_id, item_is_head)
    return f"{start or because(rated)}, also {phrase}"


def mixed_attribute_sentence(
    rated: str,
    item: str,
    relation: str,
    entity_name: str,
    entity_id: str,
    item_is_head: bool,
    start: str = "",
) -> str:
    """As :func:`attribute_sentence` when ``rated`` reaches the entity by another relation."""
    phrase = relation_phrase(relation, entity_name, entity_id, item_is_head)
    return f"{start or because(rated)}: *{item}* is {phrase}"


def linked_sentence(
    rated: str, item: str, relation: str, rated_is_head: bool, start: str = ""
) -> str:
    """``user -> rated -relation- item`` (a knowledge-graph link between the two items)."""
    head, tail = (rated, item) if rated_is_head else (item, rated)
    return f"{start or because(rated)} (*{head}* {relation_words(relation)} *{tail}*)"


def collaborative_sentence(
    rated: str, item: str, start: str = "", others_verb: str = "rated"
) -> str:
    """``user -> rated <- another user -> item`` (the other user is never named)."""
    return f"{start or because(rated)}: people who {others_verb} it also {others_verb} *{item}*"


def relation_phrase(relation: str, entity_name: str, entity_id: str, item_is_head: bool) -> str:
    """``directed_by`` + Michael Mann -> ``directed by Michael Mann``; a genre -> ``a Drama
    title``; an unnamed entity -> ``with the same award nomination``."""
    words = relation_words(relation)
    if entity_name == entity_id:
        return f"with the same {words.removeprefix('has ')}"
    if words in GENRE_RELATIONS:
        article = "an" if entity_name[:1].lower() in "aeiou" else "a"
        return f"{article} {entity_name} title"
    if not item_is_head:
        return f"linked to {entity_name} ({entity_name} {words} it)"
    return f"{words} {entity_name}"
