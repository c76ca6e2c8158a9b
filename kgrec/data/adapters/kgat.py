"""The KGAT format (Wang et al., KDD'19; the knowledge_graph_attention_network repository).

A folder with ``train.txt`` and ``test.txt`` (one line per user: ``user item item ...``, remap
ids), optional ``kg_final.txt`` (``head relation tail`` remap ids; entity ids below the number
of items *are* those items), and ``user_list.txt``, ``item_list.txt``, ``entity_list.txt``,
``relation_list.txt`` (``org_id remap_id ...`` with a header line).

kgrec keeps the remap ids, prefixed to stay distinct: users ``u<id>``, items ``i<id>``,
entities ``e<id>``; relation names are the last segment of their Freebase URL. Interactions
carry the given split (``train``/``test``; use ``split.method: given``); there are no ratings
or timestamps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data.adapters._raw import raw_table, read_delimited, read_text, require
from kgrec.data.contract import DatasetTables, Table
from kgrec.errors import Problem, ValidationError


def _adjacency(path: Path, split: str) -> tuple[pd.DataFrame, np.ndarray]:
    """``user item item ...`` lines -> one row per (user, item) with its source line."""
    users, items, lines = [], [], []
    problems = []
    for number, line in enumerate(read_text(path, "utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if not all(f.isdigit() for f in fields):
            problems.append(Problem(path, number, None, "expected non-negative integer ids"))
            continue
        for item in fields[1:]:
            users.append(fields[0])
            items.append(item)
            lines.append(number)
    if problems:
        raise ValidationError(problems[:20])
    frame = pd.DataFrame(
        {
            "user_id": "u" + pd.Series(users, dtype=str),
            "item_id": "i" + pd.Series(items, dtype=str),
            "split": split,
        }
    )
    return frame, np.asarray(lines, dtype=np.int64)


def _list_file(path: Path, columns: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    frame, lines = read_delimited(path, columns, " ", header=True)
    return frame, lines


def read_kgat(folder: Path) -> DatasetTables:
    """A KGAT-format dataset (amazon-book, last-fm, yelp2018)."""
    train_path, test_path, item_path = require(folder, "train.txt", "test.txt", "item_list.txt")
    train, train_lines = _adjacency(train_path, "train")
    test, test_lines = _adjacency(test_path, "test")
    interactions = Table(
        "interactions",
        pd.concat([train, test], ignore_index=True),
        train_path,
        lines=np.concatenate([train_lines, test_lines]),
    )
    raw_items, item_lines = _list_file(item_path, ["org_id", "remap_id", "freebase_id"])
    items = pd.DataFrame(
        {
            "item_id": "i" + raw_items["remap_id"],
            "org_id": raw_items["org_id"],
            "freebase_id": raw_items["freebase_id"],
        }
    )
    n_items = len(items)
    users_table = None
    user_path = folder / "user_list.txt"
    if user_path.exists():
        raw_users, user_lines = _list_file(user_path, ["org_id", "remap_id"])
        users_table = raw_table(
            "users",
            pd.DataFrame({"user_id": "u" + raw_users["remap_id"], "org_id": raw_users["org_id"]}),
            user_path,
            user_lines,
        )
    triples_table = entities_table = None
    kg_path = folder / "kg_final.txt"
    if kg_path.exists():
        kg, kg_lines = read_delimited(kg_path, ["head", "relation", "tail"], " ")
        relation_names = _relation_names(folder / "relation_list.txt")
        head = pd.to_numeric(kg["head"], errors="coerce")
        tail = pd.to_numeric(kg["tail"], errors="coerce")

        def node(ids: pd.Series, raw: pd.Series) -> tuple[pd.Series, pd.Series]:
            is_item = ids < n_items
            return (
                np.where(is_item, "i", "e") + raw,
                pd.Series(np.where(is_item, "item", "entity")),
            )

        head_id, head_type = node(head, kg["head"])
        tail_id, tail_type = node(tail, kg["tail"])
        triples_table = raw_table(
            "triples",
            pd.DataFrame(
                {
                    "head": head_id,
                    "relation": kg["relation"].map(relation_names).fillna("r" + kg["relation"]),
                    "tail": tail_id,
                    "head_type": head_type,
                    "tail_type": tail_type,
                }
            ),
            kg_path,
            kg_lines,
        )
        entity_ids = pd.unique(
            pd.concat([pd.Series(head_id)[head >= n_items], pd.Series(tail_id)[tail >= n_items]])
        )
        entities_table = raw_table(
            "entities",
            pd.DataFrame({"entity_id": entity_ids, "type": "entity", "name": ""}),
            kg_path,
            np.arange(len(entity_ids)) + 1,
        )
    return DatasetTables(
        interactions=interactions,
        items=raw_table("items", items, item_path, item_lines),
        users=users_table,
        triples=triples_table,
        entities=entities_table,
        name=folder.name,
    )


def _relation_names(path: Path) -> dict[str, str]:
    """remap id -> short relation name (``film.film.genre`` from the Freebase URL)."""
    if not path.exists():
        return {}
    frame, _ = _list_file(path, ["org_id", "remap_id"])
    short = frame["org_id"].str.rsplit("/", n=1).str[-1]
    return dict(zip(frame["remap_id"], short, strict=True))
