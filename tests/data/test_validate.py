"""Validation: every contract violation is reported with its file, line and field."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kgrec.data.contract import read_folder
from kgrec.data.validate import validate
from kgrec.errors import ValidationError

GOOD = {
    "interactions.csv": "user_id,item_id,rating,timestamp\nu1,i1,5,10\nu1,i2,3,20\nu2,i1,4,15\n",
    "items.csv": "item_id,title\ni1,Heat\ni2,Alien\n",
    "triples.csv": "head,relation,tail\ni1,directed_by,d1\ni2,has_genre,g1\n",
    "entities.csv": "entity_id,type,name\nd1,director,Michael Mann\ng1,genre,Sci-Fi\n",
}


def write(folder: Path, **overrides: str | None) -> Path:
    files = dict(GOOD)
    for name, text in overrides.items():
        key = f"{name}.csv"
        if text is None:
            files.pop(key, None)
        else:
            files[key] = text
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def problems(folder: Path) -> list[tuple[str, int | None, str | None, str]]:
    with pytest.raises(ValidationError) as info:
        validate(read_folder(folder))
    return [(Path(p.file).name, p.line, p.field, p.message) for p in info.value.problems]


def test_good_dataset_validates(tmp_path: Path) -> None:
    dataset = validate(read_folder(write(tmp_path)))
    assert len(dataset.interactions) == 3
    assert sorted(dataset.users["user_id"]) == ["u1", "u2"]
    assert dataset.node_types == ["user", "item", "director", "genre"]
    assert dataset.triples["tail_type"].tolist() == ["director", "genre"]
    assert dataset.interactions["rating"].dtype == "float64"


def test_missing_required_table(tmp_path: Path) -> None:
    found = problems(write(tmp_path, items=None))
    assert found[0][0] == "items.csv" and "missing" in found[0][3]


def test_misnamed_column_is_named_with_a_hint(tmp_path: Path) -> None:
    found = problems(write(tmp_path, interactions="user_id,itemid\nu1,i1\n"))
    assert found == [
        (
            "interactions.csv",
            1,
            "item_id",
            "required column 'item_id' is missing (found 'itemid': misnamed?); "
            "columns are 'user_id', 'itemid'",
        )
    ]


@pytest.mark.parametrize("text", ["", "user_id,item_id\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    found = problems(write(tmp_path, interactions=text))
    assert found[0][0] == "interactions.csv"
    assert "empty" in found[0][3] or "no rows" in found[0][3]


def test_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    found = problems(write(tmp_path, items="item_id,title\ni1,Heat\ni2,Alien\ni1,Heat again\n"))
    assert found == [("items.csv", 4, "item_id", "duplicate id 'i1' (first on line 2)")]


def test_unknown_item_in_interactions(tmp_path: Path) -> None:
    text = "user_id,item_id,rating,timestamp\nu1,i1,5,10\nu1,i9,3,20\n"
    found = problems(write(tmp_path, interactions=text))
    assert found == [("interactions.csv", 3, "item_id", "unknown item id (not in items table)")]


def test_unknown_user_when_users_table_given(tmp_path: Path) -> None:
    folder = write(tmp_path)
    (folder / "users.csv").write_text("user_id,age\nu1,30\n", encoding="utf-8")
    found = problems(folder)
    assert found == [("interactions.csv", 4, "user_id", "unknown user id (not in users table)")]


@pytest.mark.parametrize(
    ("column", "row", "message"),
    [
        ("rating", "u1,i1,five,10", "'five' is not a number"),
        (
            "timestamp",
            "u1,i1,5,yesterday",
            "'yesterday' is not an integer (seconds since the epoch)",
        ),
        ("timestamp", "u1,i1,5,10.5", "'10.5' is not an integer (seconds since the epoch)"),
    ],
)
def test_non_numeric_rating_or_timestamp(
    tmp_path: Path, column: str, row: str, message: str
) -> None:
    text = f"user_id,item_id,rating,timestamp\nu1,i2,3,20\n{row}\n"
    found = problems(write(tmp_path, interactions=text))
    assert found == [("interactions.csv", 3, column, message)]


def test_undecodable_bytes(tmp_path: Path) -> None:
    folder = write(tmp_path)
    (folder / "items.csv").write_bytes(b"item_id,title\ni1,Heat\ni2,Am\xe9lie\n")
    found = problems(folder)
    assert found[0][:3] == ("items.csv", 3, None)
    assert "0xe9" in found[0][3] and "UTF-8" in found[0][3]


def test_triple_pointing_at_unknown_entity(tmp_path: Path) -> None:
    found = problems(write(tmp_path, triples="head,relation,tail\ni1,directed_by,d7\n"))
    assert found == [("triples.csv", 2, "tail", "unknown id (not in entities, items or users)")]


def test_self_loop(tmp_path: Path) -> None:
    text = "head,relation,tail\ni1,directed_by,d1\nd1,similar_to,d1\n"
    found = problems(write(tmp_path, triples=text))
    assert found == [("triples.csv", 3, "tail", "self-loop: head and tail are the same node")]


def test_declared_type_disagrees_with_entities(tmp_path: Path) -> None:
    text = "head,relation,tail,head_type,tail_type\ni1,directed_by,g1,item,director\n"
    found = problems(write(tmp_path, triples=text))
    assert found == [
        ("triples.csv", 2, "tail_type", "declared type 'director' but 'g1' has type 'genre'")
    ]


def test_declared_item_type_must_be_an_item(tmp_path: Path) -> None:
    text = "head,relation,tail,head_type,tail_type\nd1,directed,i9,director,item\n"
    found = problems(write(tmp_path, triples=text))
    assert (
        "triples.csv",
        2,
        "tail",
        "declared type 'item' but the id is not in the items table",
    ) in found


def test_untyped_triples_without_entities_become_entity_nodes(tmp_path: Path) -> None:
    folder = write(tmp_path)
    (folder / "entities.csv").unlink()
    dataset = validate(read_folder(folder))
    assert set(dataset.entities["entity_id"]) == {"d1", "g1"}
    assert set(dataset.entities["type"]) == {"entity"}


def test_duplicates_are_merged_and_reported(tmp_path: Path) -> None:
    text = "user_id,item_id,rating,timestamp\nu1,i1,5,10\nu1,i1,2,30\nu2,i2,4,15\n"
    dataset = validate(read_folder(write(tmp_path, interactions=text)))
    assert len(dataset.interactions) == 2
    kept = dataset.interactions.set_index(["user_id", "item_id"]).loc[("u1", "i1")]
    assert kept["rating"] == 2.0  # the latest wins
    assert any("merged" in note for note in dataset.notes)


def test_parquet_input(tmp_path: Path) -> None:
    write(tmp_path)
    pd.read_csv(tmp_path / "interactions.csv", dtype=str).to_parquet(
        tmp_path / "interactions.parquet"
    )
    (tmp_path / "interactions.csv").unlink()
    dataset = validate(read_folder(tmp_path))
    assert len(dataset.interactions) == 3
    assert dataset.interactions["timestamp"].tolist() == [10, 20, 15]


def test_problems_are_capped_per_check(tmp_path: Path) -> None:
    rows = "".join(f"u1,i{n + 10},5,{n}\n" for n in range(30))
    found = problems(write(tmp_path, interactions="user_id,item_id,rating,timestamp\n" + rows))
    assert len(found) == 11
    assert "20 more" in found[-1][3]


def test_duplicate_entity_used_by_a_triple_is_reported_not_a_crash(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "interactions.csv").write_text("user_id,item_id\nu1,i1\n")
    (folder / "items.csv").write_text("item_id,title\ni1,Heat\n")
    (folder / "entities.csv").write_text("entity_id,type,name\ne1,director,Mann\ne1,director,M\n")
    (folder / "triples.csv").write_text("head,relation,tail\ni1,directed_by,e1\n")
    with pytest.raises(ValidationError, match=r"entities\.csv:3 \[entity_id\]: duplicate id 'e1'"):
        validate(read_folder(folder))


@pytest.mark.parametrize(
    ("triples", "field"),
    [
        ("head,relation,tail,head_type,tail_type\nu1,likes,i1,user,item\n", "tail_type"),
        ("head,relation,tail,head_type,tail_type\ni2,liked_by,u2,item,user\n", "tail_type"),
    ],
)
def test_user_item_triples_are_rejected(tmp_path: Path, triples: str, field: str) -> None:
    """They would enter the graph as collaborative edges that no split ever saw."""
    users = "user_id,age\nu1,30\nu2,40\n"
    found = problems(write(tmp_path, triples=triples, users=users))
    assert found == [
        (
            "triples.csv",
            2,
            field,
            "a triple between a user and an item is an interaction: put it in interactions "
            "(there the train/validation/test split applies)",
        )
    ]


def test_triples_keep_who_stated_them_and_when(tmp_path: Path) -> None:
    triples = (
        "head,relation,tail,user_id,timestamp\n"
        "i1,has_tag,t1,u1,100\ni1,has_tag,t1,u2,200\ni2,has_genre,g1,,\n"
    )
    entities = "entity_id,type,name\nt1,tag,heist\ng1,genre,Sci-Fi\n"
    dataset = validate(read_folder(write(tmp_path, triples=triples, entities=entities)))
    rows = dataset.triples[["head", "tail", "user_id", "timestamp"]].values.tolist()
    assert rows == [["i1", "t1", "u1", 100], ["i1", "t1", "u2", 200], ["i2", "g1", "", -1]]
    bad = "head,relation,tail,user_id,timestamp\ni1,has_tag,t1,u1,soon\n"
    found = problems(write(tmp_path, triples=bad, entities=entities))
    assert found == [
        ("triples.csv", 2, "timestamp", "'soon' is not an integer (seconds since the epoch)")
    ]
