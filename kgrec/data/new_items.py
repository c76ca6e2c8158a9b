"""Reading a file of new items (``kgrec add-items``) and checking it against the artifact.

A new-items file is a contract ``items`` table (``item_id`` plus text columns); an optional
contract ``triples`` file links its items to entities the graph already has. Attribute
columns name entities too: a ``genres`` column (``Western|Drama``) links each item to the
``genre`` entities of those names. Every problem is reported with its file, line and field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kgrec.data.added_items import AddedItems, Link
from kgrec.data.contract import MISSING_STRINGS, read_table
from kgrec.data.layout import ID_MAP_FILE, TABLES_DIR
from kgrec.data.mapping import IdMap
from kgrec.errors import KgrecError, Problem, ValidationError
from kgrec.naming import ITEM

RESERVED_COLUMNS = frozenset({"item_id", "title", "year", "description", "tags"})
"""Item columns that are text, never entity names."""
TRIPLE_COLUMNS = ["head", "relation", "tail", "head_type", "tail_type"]


@dataclass(frozen=True)
class NewItemsFile:
    """A checked new-items file.

    Attributes:
        items: The rows, indexed by ``item_id`` (stripped), in file order.
        links: Per item id, its KG links (no duplicates, in the order found).
        sources: Per item id, where it was read (``file:line``).
    """

    items: pd.DataFrame
    links: dict[str, tuple[Link, ...]]
    sources: dict[str, str]


def read_new_items(
    items_path: Path,
    triples_path: Path | None,
    artifacts_dir: Path,
    previous: AddedItems | None,
    entities: pd.DataFrame,
) -> NewItemsFile:
    """Read and check new items and their KG links against the artifact's catalogue, the
    ``previous`` additions and its ``entities`` table.

    Raises:
        ValidationError: missing column, empty or duplicate id, an id the catalogue or an
            earlier add already has, an item without text, a triple whose head is not a new
            item or whose tail is not a known entity (each with file, line and field).
        KgrecError: a file that does not exist.
    """
    if not items_path.is_file():
        raise KgrecError(f"no such items file: {items_path}")
    table = read_table(items_path, "items")
    frame = table.frame
    if "item_id" not in frame.columns:
        raise ValidationError([Problem(items_path, 1, "item_id", "required column is missing")])
    text_columns = [c for c in frame.columns if c != "item_id"]
    if not text_columns:
        raise ValidationError(
            [Problem(items_path, 1, None, "no text columns (title, description, genres, ...)")]
        )
    known = set(map(str, IdMap.load(artifacts_dir / ID_MAP_FILE).ids[ITEM]))
    earlier = set(previous.item_ids) if previous is not None else set()
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for row, raw in enumerate(frame["item_id"].tolist()):
        item_id, line = str(raw).strip(), table.line_of(row)
        if not item_id:
            problems.append(Problem(items_path, line, "item_id", "empty item id"))
        elif item_id in seen:
            message = f"duplicate {item_id!r} (first on line {seen[item_id]})"
            problems.append(Problem(items_path, line, "item_id", message))
        elif item_id in known:
            message = f"{item_id!r} is already in the catalogue"
            problems.append(Problem(items_path, line, "item_id", message))
        elif item_id in earlier:
            problems.append(Problem(items_path, line, "item_id", f"{item_id!r} was added before"))
        else:
            seen[item_id] = line
        values = [str(frame.iloc[row][c]).strip() for c in text_columns]
        if item_id and all(v in MISSING_STRINGS for v in values):
            problems.append(Problem(items_path, line, None, f"{item_id!r} has no text at all"))
    if problems:
        raise ValidationError(problems)
    frame = frame.assign(item_id=frame["item_id"].astype(str).str.strip()).set_index("item_id")

    entity_type = dict(zip(entities["entity_id"].astype(str), entities["type"], strict=True))
    links: dict[str, list[Link]] = {i: [] for i in frame.index}
    _links_from_columns(frame, entities, artifacts_dir, links)
    if triples_path is not None:
        problems = _links_from_triples(triples_path, set(frame.index), entity_type, links)
        if problems:
            raise ValidationError(problems)
    return NewItemsFile(
        items=frame,
        links={i: tuple(dict.fromkeys(v)) for i, v in links.items()},
        sources={i: f"{items_path}:{line}" for i, line in seen.items()},
    )


def links_table(items: Iterable[tuple[str, Iterable[Link]]]) -> pd.DataFrame:
    """``(item_id, links)`` pairs as contract triples: one ``item -relation-> entity`` row per
    link (columns ``head``, ``relation``, ``tail``, ``head_type``, ``tail_type``)."""
    rows = [
        (item_id, link.relation, link.entity_id, ITEM, link.entity_type)
        for item_id, links in items
        for link in links
    ]
    return pd.DataFrame(rows, columns=TRIPLE_COLUMNS)


def _links_from_columns(
    frame: pd.DataFrame,
    entities: pd.DataFrame,
    artifacts_dir: Path,
    links: dict[str, list[Link]],
) -> None:
    """Link attribute columns (``genres``: ``Western|Drama``) to entities of that type by name.

    A column matches an entity type by name (``genres`` or ``genre`` -> ``genre``); values are
    ``|``-separated and matched by entity name or id, case-insensitively. The relation is the
    one trained items use for that entity type (e.g. ``has_genre``). Unmatched values are
    kept in the text only.
    """
    triples = pd.read_parquet(
        artifacts_dir / TABLES_DIR / "triples.parquet",
        columns=["relation", "head_type", "tail_type"],
    )
    item_edges = triples[triples["head_type"] == ITEM]
    relation_of = item_edges.groupby("tail_type")["relation"].agg(lambda r: r.mode().iloc[0])
    types = set(map(str, entities["type"]))
    names = entities["name"] if "name" in entities else entities["entity_id"]
    for column in frame.columns:
        if column in RESERVED_COLUMNS:
            continue
        entity_type = next((t for t in (column, column.removesuffix("s")) if t in types), None)
        if entity_type is None or entity_type not in relation_of.index:
            continue
        of_type = entities["type"] == entity_type
        lookup = {
            str(k).casefold(): str(e)
            for key in (names[of_type], entities["entity_id"][of_type])
            for k, e in zip(key, entities["entity_id"][of_type], strict=True)
        }
        relation = str(relation_of[entity_type])
        for item_id, value in frame[column].items():
            for part in str(value).split("|"):
                entity = lookup.get(part.strip().casefold())
                if entity is not None:
                    links[str(item_id)].append(Link(relation, entity_type, entity))


def _links_from_triples(
    path: Path,
    new_ids: set[str],
    entity_type: dict[str, str],
    links: dict[str, list[Link]],
) -> list[Problem]:
    """Add ``head`` (a new item) -> ``tail`` (a known entity) links from a contract triples
    file; returns the problems found."""
    if not path.is_file():
        raise KgrecError(f"no such triples file: {path}")
    table = read_table(path, "triples")
    frame = table.frame
    missing = [c for c in ("head", "relation", "tail") if c not in frame.columns]
    if missing:
        return [Problem(path, 1, c, "required column is missing") for c in missing]
    problems: list[Problem] = []
    for row, (head, relation, tail) in enumerate(
        zip(frame["head"], frame["relation"], frame["tail"], strict=True)
    ):
        line = table.line_of(row)
        head, relation, tail = str(head).strip(), str(relation).strip(), str(tail).strip()
        if head not in new_ids:
            problems.append(Problem(path, line, "head", f"{head!r} is not one of the new items"))
        elif not relation:
            problems.append(Problem(path, line, "relation", "empty relation"))
        elif tail not in entity_type:
            message = f"unknown entity {tail!r} (not in the graph)"
            problems.append(Problem(path, line, "tail", message))
        else:
            links[head].append(Link(relation, str(entity_type[tail]), tail))
    return problems
