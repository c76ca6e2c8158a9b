"""The KGAT format (Wang et al., KDD'19; also used by KGIN) -> the dataset contract.

A folder (``amazon-book``, ``last-fm``, ``yelp2018``) with, all space-separated, UTF-8:

- ``train.txt`` and ``test.txt``: one line per user, ``user item item ...`` (remap ids);
- ``item_list.txt``: ``org_id remap_id freebase_id`` (header line);
- optional ``user_list.txt`` (``org_id remap_id``), ``entity_list.txt`` (``org_id remap_id``,
  org_id a Freebase mid), ``relation_list.txt`` (``org_id remap_id``, org_id a Freebase
  predicate URL), all with a header line;
- optional ``kg_final.txt``: ``head relation tail`` remap ids, no header. Entity remap ids
  below the number of items *are* those items (KGAT's convention).

kgrec keeps the remap ids (the benchmark's own, so results compare with published ones),
prefixed to keep the id spaces apart: users ``u<id>``, items ``i<id>``, entities ``e<id>``.
Users and items keep their original ids in an ``org_id`` column (items also ``freebase_id``);
entities are named by their Freebase mid from ``entity_list.txt`` and typed ``entity`` (the
format has no entity types); relations are named by the last segment of their URL
(``film.film.genre``), else ``r<id>``. Interactions get a ``split`` column, ``train`` or
``test`` after their file: use ``split.method: given`` (validation is carved from train).
There are no ratings or timestamps. Without ``kg_final.txt`` the dataset has no triples.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data.adapters._raw import (
    MAX_PROBLEMS,
    concat_tables,
    raw_table,
    read_delimited,
    read_text,
    require,
    split_lines,
    too_many_problems,
)
from kgrec.data.contract import DatasetTables, Table
from kgrec.errors import Problem, ValidationError


def _adjacency(path: Path, split: str) -> Table:
    """``user item item ...`` lines -> one interaction per (user, item), at its line."""
    rows = [line.split() for line in split_lines(read_text(path, "utf-8"))]
    sizes = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    tokens = pd.Series(list(chain.from_iterable(rows)), dtype=object)
    token_line = np.repeat(np.arange(1, len(rows) + 1), sizes)
    bad = np.unique(token_line[~tokens.str.isdecimal().to_numpy()])
    if len(bad):
        problems = [
            Problem(path, int(n), None, "expected integer ids: user item item ...")
            for n in bad[:MAX_PROBLEMS]
        ]
        raise too_many_problems(path, problems, len(bad))
    first = np.zeros(len(tokens), dtype=bool)
    first[np.cumsum(sizes[sizes > 0]) - sizes[sizes > 0]] = True
    users = tokens.to_numpy()[first]
    frame = pd.DataFrame(
        {
            "user_id": "u" + pd.Series(np.repeat(users, sizes[sizes > 0] - 1), dtype=object),
            "item_id": "i" + tokens[~first].reset_index(drop=True),
            "split": split,
        }
    )
    if frame.empty:
        raise ValidationError([Problem(path, None, None, "no interactions")])
    return raw_table("interactions", frame, path, token_line[~first])


def _integers(frame: pd.DataFrame, path: Path, lines: np.ndarray) -> None:
    """Every field of ``frame`` must be a non-negative integer (a remap id)."""
    bad = ~frame.apply(lambda column: column.str.isdecimal()).to_numpy()
    rows, cols = np.nonzero(bad)
    if len(rows):
        problems = [
            Problem(path, int(lines[r]), frame.columns[c], f"{frame.iat[r, c]!r} is not an id")
            for r, c in zip(rows[:MAX_PROBLEMS], cols[:MAX_PROBLEMS], strict=True)
        ]
        raise too_many_problems(path, problems, len(rows))


def read_kgat(folder: Path) -> DatasetTables:
    """A KGAT-format dataset folder (amazon-book, last-fm, yelp2018)."""
    train_path, test_path, item_path = require(folder, "train.txt", "test.txt", "item_list.txt")
    interactions = concat_tables(
        "interactions", [_adjacency(train_path, "train"), _adjacency(test_path, "test")]
    )
    raw_items, item_lines = read_delimited(
        item_path, ["org_id", "remap_id", "freebase_id"], " ", header=True
    )
    _integers(raw_items[["remap_id"]], item_path, item_lines)
    items = pd.DataFrame(
        {
            "item_id": "i" + raw_items["remap_id"],
            "org_id": raw_items["org_id"],
            "freebase_id": raw_items["freebase_id"],
        }
    )
    users = None
    user_path = folder / "user_list.txt"
    if user_path.is_file():
        raw_users, user_lines = read_delimited(user_path, ["org_id", "remap_id"], " ", header=True)
        _integers(raw_users[["remap_id"]], user_path, user_lines)
        users = raw_table(
            "users",
            pd.DataFrame({"user_id": "u" + raw_users["remap_id"], "org_id": raw_users["org_id"]}),
            user_path,
            user_lines,
        )
    triples = entities = None
    kg_path = folder / "kg_final.txt"
    if kg_path.is_file():
        triples, entities = _read_kg(folder, kg_path, n_items=len(items))
    return DatasetTables(
        interactions=interactions,
        items=raw_table("items", items, item_path, item_lines),
        users=users,
        triples=triples,
        entities=entities,
        name=folder.name,
    )


def _read_kg(folder: Path, kg_path: Path, n_items: int) -> tuple[Table, Table]:
    """``kg_final.txt`` triples and the non-item entities they reach."""
    kg, kg_lines = read_delimited(kg_path, ["head", "relation", "tail"], " ")
    _integers(kg, kg_path, kg_lines)
    relation_names = _relation_names(folder / "relation_list.txt")
    ends = {}
    for end in ("head", "tail"):
        is_item = kg[end].astype(np.int64).to_numpy() < n_items
        ends[end] = (np.where(is_item, "i", "e") + kg[end], np.where(is_item, "item", "entity"))
    names = kg["relation"].map(relation_names)
    triples = pd.DataFrame(
        {
            "head": ends["head"][0],
            "relation": names.fillna("r" + kg["relation"]),
            "tail": ends["tail"][0],
            "head_type": ends["head"][1],
            "tail_type": ends["tail"][1],
        }
    )
    # every non-item endpoint, at the first kg_final.txt line that names it
    both = pd.DataFrame(
        {
            "entity_id": np.concatenate([triples["head"], triples["tail"]]),
            "type": np.concatenate([triples["head_type"], triples["tail_type"]]),
            "line": np.concatenate([kg_lines, kg_lines]),
        }
    )
    both = both.iloc[np.argsort(both["line"].to_numpy(), kind="stable")]
    both = both[both["type"] == "entity"].drop_duplicates("entity_id")
    ids = both["entity_id"].to_numpy()
    names = np.full(len(ids), "", dtype=object)
    lines = np.array(both["line"], dtype=np.int64)
    source_of = np.zeros(len(ids), dtype=np.int64)
    sources = [kg_path]
    entity_path = folder / "entity_list.txt"
    if entity_path.is_file():  # named by their mid, at their entity_list.txt line
        listed, listed_lines = read_delimited(entity_path, ["org_id", "remap_id"], " ", header=True)
        position = pd.Series(np.arange(len(listed)), index="e" + listed["remap_id"])
        position = position[~position.index.duplicated()].reindex(ids)
        found = position.notna().to_numpy()
        index = position[found].astype(np.int64).to_numpy()
        names[found] = listed["org_id"].to_numpy()[index]
        lines[found] = listed_lines[index]
        source_of[found] = 1
        sources.append(entity_path)
    entity_table = Table(
        "entities",
        pd.DataFrame({"entity_id": ids, "type": "entity", "name": names}),
        kg_path,
        lines=lines,
        sources=tuple(sources),
        source_of=source_of,
    )
    return raw_table("triples", triples, kg_path, kg_lines), entity_table


def _relation_names(path: Path) -> dict[str, str]:
    """remap id -> short relation name (``film.film.genre`` from its Freebase URL)."""
    if not path.is_file():
        return {}
    frame, _ = read_delimited(path, ["org_id", "remap_id"], " ", header=True)
    short = frame["org_id"].str.rstrip("/").str.rsplit("/", n=1).str[-1]
    return dict(zip(frame["remap_id"], short, strict=True))
