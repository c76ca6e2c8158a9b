"""Payload frames as upsert rows: numbers stay numbers, text stays text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgrec.store.base import NodeSet, RelationshipSet
from kgrec.store.rows import node_batches, relationship_batches, typed_values


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["22", "48", None], [22, 48, None]),
        (["-7", "0", "12"], [-7, 0, 12]),
        (["1.5", "2", None], [1.5, 2.0, None]),
        (["02134", "12345"], ["02134", "12345"]),  # a zip code keeps its leading zero
        (["T8H1N", "12345"], ["T8H1N", "12345"]),
        (["1e3", "2"], ["1e3", "2"]),  # only plain decimals
        (["12", ""], ["12", ""]),
        ([None, None], [None, None]),
        ([3, "4"], [3, "4"]),  # mixed kinds are left alone
        (["123456789012345678901", "1"], ["123456789012345678901", "1"]),  # beyond int64
    ],
)
def test_typed_values(values: list[object], expected: list[object]) -> None:
    got = typed_values(values)
    assert got == expected
    assert [type(v) for v in got] == [type(v) for v in expected]


def test_node_rows_type_numeric_columns_and_keep_text_columns() -> None:
    frame = pd.DataFrame(
        {
            "id": ["1", "2", "3"],
            "title": ["1984", "2001", "1917"],  # films named by a year stay text
            "year": ["1949", "1968", None],
            "age": np.array([16, 30, 41], dtype="int64"),
            "zip_code": ["01002", "94110", "T8H1N"],
        }
    )
    rows = next(node_batches(NodeSet("Item", frame), 10))
    assert rows[0] == {
        "id": "1",
        "props": {"title": "1984", "year": 1949, "age": 16, "zip_code": "01002"},
    }
    assert "year" not in rows[2]["props"]
    assert all(type(r["props"]["age"]) is int for r in rows)


def test_relationship_rows_keep_integer_timestamps_and_float_ratings() -> None:
    frame = pd.DataFrame(
        {
            "source": ["u1", "u2"],
            "target": ["i1", "i1"],
            "rating": [5.0, 3.0],
            "timestamp": pd.array([881250949, None], dtype="Int64"),
        }
    )
    rows = next(relationship_batches(RelationshipSet("INTERACTED", "User", "Item", frame), 5))
    assert rows[0]["props"] == {"rating": 5.0, "timestamp": 881250949}
    assert type(rows[0]["props"]["timestamp"]) is int and type(rows[0]["props"]["rating"]) is float
    assert rows[1]["props"] == {"rating": 3.0}
