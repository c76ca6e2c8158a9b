"""Adapters: tiny fixtures written here, and the real public files when they are present."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgrec.data.adapters import load_adapter
from kgrec.data.validate import validate
from kgrec.errors import KgrecError, ValidationError
from tests.conftest import shared_dataset

GENRES = ["unknown", "Action", "Comedy"]


def ml100k(folder: Path, data: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text(data or "1\t10\t4\t100\n1\t11\t3\t101\n2\t10\t5\t102\n")
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)) + "\n")
    (folder / "u.item").write_bytes(
        "10|Amélie (2001)|01-Jan-2001||http://x|0|0|1\n11|Heat (1995)|01-Jan-1995||http://y|0|1|0\n"
        .encode("latin-1")
    )  # fmt: skip
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    return folder


def test_ml100k_fixture_latin1_genres_occupations(tmp_path: Path) -> None:
    dataset = validate(load_adapter("ml-100k", ml100k(tmp_path / "m")))
    items = dataset.items.set_index("item_id")
    assert items.loc["10", "title"] == "Amélie (2001)"
    assert items.loc["11", "genres"] == "Action"
    assert items.loc["10", "year"] == "2001"
    triples = set(map(tuple, dataset.triples[["head", "relation", "tail"]].to_numpy()))
    assert ("10", "has_genre", "genre:Comedy") in triples
    assert ("1", "has_occupation", "occupation:technician") in triples
    assert len(dataset.interactions) == 3


def test_ml100k_bad_rating_names_the_raw_file_and_line(tmp_path: Path) -> None:
    folder = ml100k(tmp_path / "m", "1\t10\t4\t100\n1\t11\tfour\t101\n")
    with pytest.raises(ValidationError, match=r"u\.data:2 \[rating\]: 'four' is not a number"):
        validate(load_adapter("ml-100k", folder))


def test_ml100k_kg_error_names_the_kg_file(tmp_path: Path) -> None:
    folder = ml100k(tmp_path / "m")
    kg = tmp_path / "kg"
    kg.mkdir()
    (kg / "triples.csv").write_text(
        "head,relation,tail,source\nitem:10,directed_by,director:d1,x\nitem:11,genre,genre:g,x\n"
    )
    (kg / "entities.csv").write_text(
        "entity_id,type,name,lang,name_source,freebase_id,other_name,other_types\n"
        "director:d1,director,Jean-Pierre Jeunet,en,,,,\ngenre:g,genre,crime,en,,,,\n"
    )
    dataset = validate(load_adapter("ml-100k", folder, kg_path=kg))
    fb = dataset.triples[dataset.triples["relation"] == "fb_genre"]
    assert fb["tail_type"].tolist() == ["fb_genre"]  # kept apart from MovieLens genres
    (kg / "triples.csv").write_text(
        "head,relation,tail,source\nitem:10,directed_by,director:d1,x\nitem:10,directed_by,item:10,x\n"
    )
    with pytest.raises(ValidationError, match=r"triples\.csv:3"):
        validate(load_adapter("ml-100k", folder, kg_path=kg))


def test_missing_file_and_unknown_adapter(tmp_path: Path) -> None:
    folder = ml100k(tmp_path / "m")
    (folder / "u.user").unlink()
    with pytest.raises(ValidationError, match=r"u\.user: required file is missing"):
        load_adapter("ml-100k", folder)
    with pytest.raises(KgrecError, match="unknown adapter 'ml-10m'"):
        load_adapter("ml-10m", folder)


def test_undecodable_utf8_is_reported_with_its_line(tmp_path: Path) -> None:
    folder = tmp_path / "latest"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,5\n")
    (folder / "movies.csv").write_bytes(b"movieId,title,genres\n1,Ok (1999),Drama\n2,Bad \xff,x\n")
    with pytest.raises(ValidationError, match=r"movies\.csv:3: byte 0xff is not valid utf-8"):
        load_adapter("ml-latest-small", folder)


def test_ml_latest_tags_become_triples_and_text(tmp_path: Path) -> None:
    folder = tmp_path / "latest"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,5\n2,2,3.5,6\n")
    (folder / "movies.csv").write_text(
        'movieId,title,genres\n1,"Heat, The (1995)",Action|Crime\n2,Up (2009),(no genres listed)\n'
    )
    (folder / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n1,1, Heist ,7\n2,1,heist,8\n2,1,Pacino,9\n"
    )
    dataset = validate(load_adapter("ml-latest-small", folder))
    items = dataset.items.set_index("item_id")
    assert items.loc["1", "title"] == "Heat, The (1995)"
    assert items.loc["1", "tags"] == "heist, pacino"
    assert items.loc["2", "genres"] == ""
    tags = dataset.triples[dataset.triples["relation"] == "has_tag"]
    assert sorted(tags["tail"]) == ["tag:heist", "tag:pacino"]


def test_ml1m_double_colon_latin1(tmp_path: Path) -> None:
    folder = tmp_path / "m1"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::1::5::978300760\n2::1::3::978300761\n")
    (folder / "movies.dat").write_bytes("1::Amélie (2001)::Comedy|Romance\n".encode("latin-1"))
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    dataset = validate(load_adapter("ml-1m", folder))
    assert dataset.items["title"].tolist() == ["Amélie (2001)"]
    assert dataset.users.set_index("user_id").loc["1", "occupation"] == "K-12 student"
    assert len(dataset.triples) == 2


def test_kgat_given_split_and_kg(tmp_path: Path) -> None:
    folder = tmp_path / "kgat"
    folder.mkdir()
    (folder / "train.txt").write_text("0 0 1\n1 1\n")
    (folder / "test.txt").write_text("0 2\n1 0\n")
    (folder / "item_list.txt").write_text(
        "org_id remap_id freebase_id\na 0 m.a\nb 1 m.b\nc 2 m.c\n"
    )
    (folder / "kg_final.txt").write_text("0 0 3\n1 0 3\n3 1 4\n")
    (folder / "relation_list.txt").write_text(
        "org_id remap_id\nhttp://rdf.freebase.com/ns/film.film.genre 0\nhttp://x/y.z 1\n"
    )
    dataset = validate(load_adapter("kgat", folder))
    inter = dataset.interactions
    assert sorted(zip(inter["user_id"], inter["item_id"], inter["split"], strict=True)) == [
        ("u0", "i0", "train"), ("u0", "i1", "train"), ("u0", "i2", "test"),
        ("u1", "i0", "test"), ("u1", "i1", "train"),
    ]  # fmt: skip
    triples = dataset.triples
    assert set(triples["relation"]) == {"film.film.genre", "y.z"}
    assert set(triples["head_type"]) | set(triples["tail_type"]) == {"item", "entity"}
    assert sorted(dataset.entities["entity_id"]) == ["e3", "e4"]


def test_kgat_non_integer_line(tmp_path: Path) -> None:
    folder = tmp_path / "kgat"
    folder.mkdir()
    (folder / "train.txt").write_text("0 0 1\n1 x\n")
    (folder / "test.txt").write_text("0 2\n")
    (folder / "item_list.txt").write_text("org_id remap_id freebase_id\na 0 m\nb 1 m\nc 2 m\n")
    with pytest.raises(ValidationError, match=r"train\.txt:2: expected non-negative integer ids"):
        load_adapter("kgat", folder)


# ------------------------------------------------------------------ real public files


@pytest.mark.datasets
def test_real_ml100k_with_kg() -> None:
    dataset = validate(
        load_adapter("ml-100k", shared_dataset("ml-100k"), kg_path=shared_dataset("ml-100k-kg"))
    )
    assert len(dataset.interactions) == 100_000
    assert len(dataset.users) == 943
    assert len(dataset.items) == 1_682
    kg = dataset.triples[~dataset.triples["relation"].isin(["has_genre", "has_occupation"])]
    assert len(kg) == 107_153
    assert {"actor", "director", "fb_genre"} <= set(dataset.entities["type"])
    assert dataset.items.set_index("item_id").loc["1", "title"] == "Toy Story (1995)"


@pytest.mark.datasets
def test_real_ml_latest_small() -> None:
    dataset = validate(load_adapter("ml-latest-small", shared_dataset("ml-latest-small")))
    assert len(dataset.interactions) == 100_836
    assert len(dataset.users) == 610
    assert len(dataset.items) == 9_742
    assert (dataset.triples["relation"] == "has_tag").sum() > 1_000


@pytest.mark.datasets
def test_real_ml1m_movies_and_users() -> None:
    from kgrec.data.adapters._raw import read_delimited
    from kgrec.data.adapters.movielens import ML1M_OCCUPATIONS

    folder = shared_dataset("ml-1m")
    movies, _ = read_delimited(
        folder / "movies.dat", ["id", "title", "genres"], "::", encoding="latin-1"
    )
    users, _ = read_delimited(
        folder / "users.dat", ["id", "g", "age", "occ", "zip"], "::", encoding="latin-1"
    )
    assert len(movies) == 3_883
    assert len(users) == 6_040
    assert set(users["occ"].astype(int)) <= set(range(len(ML1M_OCCUPATIONS)))


@pytest.mark.datasets
def test_real_kgat_amazon_book() -> None:
    dataset = validate(load_adapter("kgat", shared_dataset("kgat") / "amazon-book"))
    assert len(dataset.users) == 70_679
    assert len(dataset.items) == 24_915
    assert len(dataset.interactions) == 846_434
    assert set(dataset.interactions["split"]) == {"train", "test"}
