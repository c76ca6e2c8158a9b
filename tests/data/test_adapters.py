"""Adapters: tiny fixtures written here, and the real public files when they are present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgrec.data.adapters import ADAPTERS, load_adapter
from kgrec.data.contract import DatasetTables
from kgrec.data.validate import Dataset, validate
from kgrec.errors import KgrecError, ValidationError
from tests.conftest import REPO, shared_dataset

GENRES = ["unknown", "Action", "Comedy"]


def check_sources(tables: DatasetTables) -> None:
    """Every table has one source line per row, and every row's file exists."""
    for table in tables.tables():
        assert table.lines is not None and len(table.lines) == len(table), table.name
        assert (np.asarray(table.lines) >= 1).all(), table.name
        if table.source_of is not None:
            assert len(table.source_of) == len(table), table.name
        for row in (0, len(table) - 1):
            assert table.path_of(row).is_file(), table.name


def load(name: str, path: Path, kg_path: Path | None = None) -> Dataset:
    tables = load_adapter(name, path, kg_path=kg_path)
    check_sources(tables)
    return validate(tables)


# ------------------------------------------------------------------------------ ml-100k


def ml100k(folder: Path, data: str | None = None, items: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text(data or "1\t10\t4\t100\n1\t11\t3\t101\n2\t10\t5\t102\n")
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)) + "\n")
    (folder / "u.item").write_bytes(
        (
            items
            or "10|Amélie (2001)|01-Jan-2001||http://x|0|0|1\n11|Heat (1995)|||http://y|0|1|0\n"
        ).encode("latin-1")
    )
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    return folder


def test_ml100k_latin1_items_genres_occupations(tmp_path: Path) -> None:
    dataset = load("ml-100k", ml100k(tmp_path / "m"))
    items = dataset.items.set_index("item_id")
    assert items.loc["10", "title"] == "Amélie (2001)"  # byte 0xe9 read as Latin-1
    assert items.loc["10", "year"] == "2001"  # from the release date
    assert items.loc["11", "year"] == "1995"  # no release date: from the title
    assert items.loc["11", "genres"] == "Action"
    assert items.loc["10", "url"] == "http://x"
    users = dataset.users.set_index("user_id")
    assert users.loc["2", "gender"] == "F" and users.loc["2", "age"] == "53"
    triples = set(map(tuple, dataset.triples[["head", "relation", "tail", "tail_type"]].values))
    assert triples == {
        ("10", "has_genre", "genre:Comedy", "genre"),
        ("11", "has_genre", "genre:Action", "genre"),
        ("1", "has_occupation", "occupation:technician", "occupation"),
        ("2", "has_occupation", "occupation:other", "occupation"),
    }
    entities = dataset.entities.set_index("entity_id")
    assert entities.loc["genre:Action", "type"] == "genre"
    assert entities.loc["genre:Action", "name"] == "Action"
    assert len(dataset.interactions) == 3


def test_ml100k_bad_rating_names_the_raw_file_and_line(tmp_path: Path) -> None:
    folder = ml100k(tmp_path / "m", "1\t10\t4\t100\n\n1\t11\tfour\t101\n")
    with pytest.raises(ValidationError, match=r"u\.data:3 \[rating\]: 'four' is not a number"):
        load("ml-100k", folder)


def test_ml100k_row_with_missing_field_names_its_line(tmp_path: Path) -> None:
    folder = ml100k(tmp_path / "m", "1\t10\t4\t100\n1\t11\t3\n")
    with pytest.raises(ValidationError, match=r"u\.data:2: expected 4 fields .* found 3"):
        load_adapter("ml-100k", folder)


def test_ml100k_bad_genre_flag(tmp_path: Path) -> None:
    folder = ml100k(tmp_path / "m", items="10|A (2001)|||u|0|0|1\n11|B (1995)|||u|0|x|0\n")
    with pytest.raises(ValidationError, match=r"u\.item:2 \[Action\]: genre flag must be 0 or 1"):
        load_adapter("ml-100k", folder)


def test_ml100k_undecodable_bytes_name_the_line(tmp_path: Path) -> None:
    folder = ml100k(tmp_path / "m")
    (folder / "u.data").write_bytes(b"1\t10\t4\t100\n1\t11\t3\xff\t101\n")
    with pytest.raises(ValidationError, match=r"u\.data:2: byte 0xff is not valid utf-8"):
        load_adapter("ml-100k", folder)


def kg_folder(folder: Path, triples: str, entities: str, item_map: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "triples.csv").write_text("head,relation,tail,source\n" + triples)
    (folder / "entities.csv").write_text(
        "entity_id,type,name,lang,name_source,freebase_id,other_name,other_types\n" + entities
    )
    if item_map is not None:
        (folder / "item_map.csv").write_text(
            "ml100k_item_id,ml100k_title,ml1m_movie_id,ml1m_title,freebase_id,match_kind,"
            "match_note,in_kg\n" + item_map
        )
    return folder


def test_ml100k_kg_is_merged_apart_from_movielens_genres(tmp_path: Path) -> None:
    kg = kg_folder(
        tmp_path / "kg",
        "item:10,directed_by,director:m.d1,x\n"
        "item:11,genre,genre:Comedy,x\n"  # same id text as a MovieLens genre
        "item:99,actor,actor:m.a,x\n"  # not in u.item: dropped
        "item:10,sequel,film:m.heat,x\n"  # an ml-100k movie: linked item -> item
        "item:11,sequel,film:m.other,x\n",
        "item:10,item,Amélie,en,,m.ame,,\n"
        'director:m.d1,director,"Jeunet, Jean-Pierre",en,,m.d1,,\n'
        "genre:Comedy,genre,comedy film,en,,m.c,,\n"
        "actor:m.a,actor,Someone,en,,m.a,,\n"
        "film:m.heat,film,Heat,en,,m.heat,,\n"
        "film:m.other,film,Other,en,,m.other,,\n",
        "10,Amélie (2001),1,x,m.ame,exact,,1\n11,Heat (1995),2,x,m.heat,exact,,1\n",
    )
    tables = load_adapter("ml-100k", ml100k(tmp_path / "m"), kg_path=kg)
    assert tables.notes[0].startswith("1 of 5 KG triples dropped")
    assert "1 KG sequel/prequel tails are ml-100k movies" in tables.notes[1]
    dataset = load("ml-100k", tmp_path / "m", kg)
    triples = set(map(tuple, dataset.triples[["head", "relation", "tail", "tail_type"]].values))
    assert {
        ("10", "directed_by", "director:m.d1", "director"),
        ("11", "fb_genre", "fb_genre:Comedy", "fb_genre"),
        ("11", "has_genre", "genre:Action", "genre"),
        ("10", "sequel", "11", "item"),
        ("11", "sequel", "film:m.other", "film"),
    } <= triples
    assert not any(t[0] == "99" for t in triples)
    entities = dataset.entities.set_index("entity_id")
    assert entities["type"].to_dict() == {
        "genre:Action": "genre",
        "genre:Comedy": "genre",
        "occupation:technician": "occupation",
        "occupation:other": "occupation",
        "director:m.d1": "director",
        "fb_genre:Comedy": "fb_genre",
        "film:m.other": "film",
    }  # no item rows, no unused KG entities, ids unique across both sources
    assert entities.loc["director:m.d1", "name"] == "Jeunet, Jean-Pierre"
    assert dataset.name == "ml-100k+kg"


def test_ml100k_kg_errors_name_the_kg_file_and_line(tmp_path: Path) -> None:
    folder = ml100k(tmp_path / "m")
    entities = "director:m.d1,director,J,en,,,,\n"
    kg = kg_folder(tmp_path / "kg", "item:10,directed_by,director:m.d1,x\n,,\n", entities)
    with pytest.raises(ValidationError, match=r"triples\.csv:3: expected 4 fields"):
        load_adapter("ml-100k", folder, kg_path=kg)
    kg_folder(
        tmp_path / "kg", "item:10,directed_by,director:m.d1,x\nitem:10,x,nobody:m.z,x\n", entities
    )
    with pytest.raises(ValidationError, match=r"triples\.csv:3 \[tail\]: unknown entity id"):
        load("ml-100k", folder, kg)
    (kg / "entities.csv").unlink()
    with pytest.raises(ValidationError, match=r"entities\.csv: required file is missing"):
        load_adapter("ml-100k", folder, kg_path=kg)


def test_missing_file_unknown_adapter_and_stray_kg(tmp_path: Path) -> None:
    folder = ml100k(tmp_path / "m")
    (folder / "u.user").unlink()
    with pytest.raises(ValidationError, match=r"u\.user: required file is missing"):
        load_adapter("ml-100k", folder)
    with pytest.raises(ValidationError, match="dataset folder does not exist"):
        load_adapter("ml-100k", tmp_path / "nowhere")
    with pytest.raises(
        KgrecError, match="unknown adapter 'ml-10m'; choose one of: contract, ml-100k"
    ):
        load_adapter("ml-10m", folder)
    with pytest.raises(KgrecError, match="adapter 'kgat' takes no extra KG folder"):
        load_adapter("kgat", folder, kg_path=folder)


def test_registry_matches_the_config_choices() -> None:
    from typing import get_args

    from kgrec.config import Adapter

    assert set(ADAPTERS) == set(get_args(Adapter)) - {"contract"}


# ---------------------------------------------------------------------- ml-latest-small


def latest(folder: Path, movies: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\r\n1,1,4.0,5\r\n2,2,3.5,6\r\n"
    )
    (folder / "movies.csv").write_text(
        movies
        or 'movieId,title,genres\n1,"Heat, The (1995)",Action|Crime\n'
        "2,Up (2009),(no genres listed)\n"
    )
    (folder / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n1,1, Heist ,7\n2,1,heist,8\n2,1,Pacino,9\n1,2,heist,9\n"
    )
    return folder


def test_ml_latest_tags_become_triples_with_who_and_when(tmp_path: Path) -> None:
    dataset = load("ml-latest-small", latest(tmp_path / "latest"))
    items = dataset.items.set_index("item_id")
    assert items.loc["1", "title"] == "Heat, The (1995)"
    assert items.loc["1", "year"] == "1995"
    assert items.loc["1", "genres"] == "Action|Crime"
    assert items.loc["2", "genres"] == ""
    assert "tags" not in items.columns  # item texts name the kept tags as KG neighbours
    tags = dataset.triples[dataset.triples["relation"] == "has_tag"]
    statements = zip(tags["head"], tags["tail"], tags["user_id"], tags["timestamp"], strict=True)
    assert sorted(statements) == [
        ("1", "tag:heist", "1", 7),
        ("1", "tag:heist", "2", 8),
        ("1", "tag:pacino", "2", 9),
        ("2", "tag:heist", "1", 9),
    ]  # fmt: skip  (lower-cased and trimmed; one row per application, for the split)
    assert set(dataset.entities["type"]) == {"genre", "tag"}
    assert len(dataset.users) == 2 and len(dataset.interactions) == 2


def test_ml_latest_errors_name_file_and_line(tmp_path: Path) -> None:
    folder = latest(tmp_path / "latest")
    (folder / "movies.csv").write_bytes(b"movieId,title,genres\n1,Ok (1999),Drama\n2,Bad \xff,x\n")
    with pytest.raises(ValidationError, match=r"movies\.csv:3: byte 0xff is not valid utf-8"):
        load_adapter("ml-latest-small", folder)
    latest(folder, "movieId,title,genres\n1,Heat,Action\n2,Up (2009),Comedy\n")
    (folder / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,1,heist,7\n1,3,x,8\n")
    with pytest.raises(ValidationError, match=r"tags\.csv:3 \[head\]"):
        load("ml-latest-small", folder)


# -------------------------------------------------------------------------------- ml-1m


def test_ml1m_double_colon_latin1(tmp_path: Path) -> None:
    folder = tmp_path / "m1"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::1::5::978300760\n2::1::3::978300761\n")
    (folder / "movies.dat").write_bytes("1::Amélie (2001)::Comedy|Romance\n".encode("latin-1"))
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    dataset = load("ml-1m", folder)
    assert dataset.items["title"].tolist() == ["Amélie (2001)"]
    assert dataset.items["year"].tolist() == ["2001"]
    users = dataset.users.set_index("user_id")
    assert users.loc["1", "occupation"] == "K-12 student"
    assert users.loc["2", "age"] == "56"
    assert sorted(dataset.triples["tail"]) == [
        "genre:Comedy", "genre:Romance", "occupation:K-12 student", "occupation:self-employed",
    ]  # fmt: skip
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::21::70072\n")
    with pytest.raises(ValidationError, match=r"users\.dat:2 \[occupation\]: '21' is not an"):
        load_adapter("ml-1m", folder)
    (folder / "ratings.dat").write_text("1::1::5::978300760\n2::1::3::soon\n")
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    with pytest.raises(ValidationError, match=r"ratings\.dat:2 \[timestamp\]: 'soon' is not"):
        load("ml-1m", folder)


# --------------------------------------------------------------------------------- KGAT


def kgat(folder: Path, kg: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text("0 0 1\n1 1\n")
    (folder / "test.txt").write_text("0 2\n1 0\n")
    (folder / "user_list.txt").write_text("org_id remap_id\nA 0\nB 1\n")
    (folder / "item_list.txt").write_text(
        "org_id remap_id freebase_id\na 0 m.a\nb 1 m.b\nc 2 m.c\n"
    )
    (folder / "entity_list.txt").write_text("org_id remap_id\nm.a 0\nm.b 1\nm.c 2\nm.x 3\nm.y 4\n")
    (folder / "relation_list.txt").write_text(
        "org_id remap_id\nhttp://rdf.freebase.com/ns/film.film.genre 0\nhttp://x/y.z 1\n"
    )
    if kg:
        (folder / "kg_final.txt").write_text("0 0 3\n1 0 3\n3 1 4\n2 2 0\n")
    return folder


def test_kgat_given_split_and_kg(tmp_path: Path) -> None:
    dataset = load("kgat", kgat(tmp_path / "kgat"))
    inter = dataset.interactions
    assert sorted(zip(inter["user_id"], inter["item_id"], inter["split"], strict=True)) == [
        ("u0", "i0", "train"), ("u0", "i1", "train"), ("u0", "i2", "test"),
        ("u1", "i0", "test"), ("u1", "i1", "train"),
    ]  # fmt: skip
    assert (inter["rating"].isna()).all() and (inter["timestamp"] == -1).all()
    assert dataset.users.set_index("user_id").loc["u1", "org_id"] == "B"
    assert dataset.items.set_index("item_id").loc["i2", "freebase_id"] == "m.c"
    triples = set(map(tuple, dataset.triples[["head", "relation", "tail", "tail_type"]].values))
    assert triples == {
        ("i0", "film.film.genre", "e3", "entity"),
        ("i1", "film.film.genre", "e3", "entity"),
        ("e3", "y.z", "e4", "entity"),
        ("i2", "r2", "i0", "item"),  # relation missing from relation_list.txt
    }
    entities = dataset.entities.set_index("entity_id")
    assert entities["name"].to_dict() == {"e3": "m.x", "e4": "m.y"}
    assert set(entities["type"]) == {"entity"}


def test_kgat_split_feeds_the_given_split_method(tmp_path: Path) -> None:
    from kgrec.config import SplitConfig
    from kgrec.data.split import split_interactions

    dataset = load("kgat", kgat(tmp_path / "kgat", kg=False))
    assert len(dataset.triples) == 0 and len(dataset.entities) == 0
    labels = split_interactions(dataset.interactions, SplitConfig(method="given", val_ratio=0))
    assert labels.tolist() == dataset.interactions["split"].tolist()


def test_kgat_errors_name_train_or_test_and_line(tmp_path: Path) -> None:
    folder = kgat(tmp_path / "kgat")
    (folder / "test.txt").write_text("0 2\n1 7\n")
    with pytest.raises(ValidationError, match=r"test\.txt:2 \[item_id\]: unknown item id"):
        load("kgat", folder)
    (folder / "train.txt").write_text("0 0 1\n1 x\n")
    with pytest.raises(ValidationError, match=r"train\.txt:2: expected integer ids"):
        load_adapter("kgat", folder)
    kgat(folder)
    (folder / "kg_final.txt").write_text("0 0 3\n1 0\n")
    with pytest.raises(ValidationError, match=r"kg_final\.txt:2: expected 3 fields"):
        load_adapter("kgat", folder)
    (folder / "kg_final.txt").write_text("0 0 3\n1 0 -4\n")
    with pytest.raises(ValidationError, match=r"kg_final\.txt:2 \[tail\]: '-4' is not an id"):
        load_adapter("kgat", folder)


# ------------------------------------------------------------------ real public files


def _flag_count(u_item: Path) -> int:
    """Genre flags set in u.item, counted independently of the adapter."""
    lines = u_item.read_bytes().decode("latin-1").split("\n")
    return sum(line.split("|")[5:].count("1") for line in lines if line.strip())


@pytest.mark.datasets
def test_real_ml100k() -> None:
    folder = shared_dataset("ml-100k")
    dataset = load("ml-100k", folder)
    assert len(dataset.interactions) == 100_000
    assert len(dataset.users) == 943
    assert len(dataset.items) == 1_682
    genres = dataset.triples[dataset.triples["relation"] == "has_genre"]
    assert len(genres) == _flag_count(folder / "u.item")
    assert set(genres["tail_type"]) == {"genre"}
    assert (dataset.triples["relation"] == "has_occupation").sum() == 943
    assert dataset.entities["type"].value_counts().to_dict() == {"occupation": 21, "genre": 19}
    items = dataset.items.set_index("item_id")
    assert items.loc["1", "title"] == "Toy Story (1995)"
    assert items.loc["1", "year"] == "1995"
    assert items.loc["1", "genres"] == "Animation|Children's|Comedy"


@pytest.mark.datasets
def test_real_ml100k_with_kg() -> None:
    tables = load_adapter(
        "ml-100k", shared_dataset("ml-100k"), kg_path=shared_dataset("ml-100k-kg")
    )
    check_sources(tables)
    dataset = validate(tables)
    assert len(dataset.interactions) == 100_000
    assert len(dataset.users) == 943
    assert len(dataset.items) == 1_682
    kg = dataset.triples[~dataset.triples["relation"].isin(["has_genre", "has_occupation"])]
    assert len(kg) == 107_153  # every KG triple kept (PROVENANCE.md)
    assert kg["relation"].nunique() == 17
    assert (kg["relation"] == "fb_genre").sum() == 7_040
    assert (kg["tail_type"] == "item").sum() > 100  # sequels that are ml-100k movies
    assert not dataset.entities["entity_id"].duplicated().any()
    types = set(dataset.entities["type"])
    assert {"actor", "director", "fb_genre", "genre", "occupation"} <= types
    assert "item" not in types
    assert not [n for n in dataset.notes if "dropped" in n]


@pytest.mark.datasets
def test_real_ml_latest_small() -> None:
    folder = shared_dataset("ml-latest-small")
    dataset = load("ml-latest-small", folder)
    assert len(dataset.interactions) == 100_836
    assert len(dataset.users) == 610
    assert len(dataset.items) == 9_742
    tags = dataset.triples[dataset.triples["relation"] == "has_tag"]
    import pandas as pd

    raw = pd.read_csv(folder / "tags.csv", dtype=str, keep_default_na=False)
    expected = raw.assign(tag=raw["tag"].str.strip().str.lower()).drop_duplicates(
        ["movieId", "tag"]
    )
    assert len(tags) == len(raw)  # one statement per application, with who and when
    assert len(tags.drop_duplicates(["head", "tail"])) == len(expected)
    assert (tags["timestamp"] > 1_000_000_000).all() and (tags["user_id"] != "").all()


@pytest.mark.datasets
def test_real_ml1m_movies_and_users(tmp_path: Path) -> None:
    """The shared copy lacks ratings.dat: real movies.dat / users.dat, a tiny ratings.dat."""
    real = shared_dataset("ml-1m")
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    for name in ("movies.dat", "users.dat"):
        (folder / name).symlink_to(real / name)  # read in place, not copied
    (folder / "ratings.dat").write_text("1::1193::5::978300760\n6040::3952::4::956716113\n")
    dataset = load("ml-1m", folder)
    assert len(dataset.items) == 3_883
    assert len(dataset.users) == 6_040
    assert dataset.entities["type"].value_counts().to_dict() == {"occupation": 21, "genre": 18}
    assert dataset.items.set_index("item_id").loc["1", "title"] == "Toy Story (1995)"


@pytest.mark.datasets
def test_real_kgat_amazon_book() -> None:
    dataset = load("kgat", shared_dataset("kgat") / "amazon-book")
    assert len(dataset.users) == 70_679
    assert len(dataset.items) == 24_915
    counts = dataset.interactions["split"].value_counts().to_dict()
    assert counts == {"train": 652_514, "test": 193_920}  # PROVENANCE.md
    assert len(dataset.triples) == 0  # kg_final.txt is not in the shared copy


@pytest.mark.datasets
def test_real_kgat_last_fm_has_no_train_txt() -> None:
    folder = shared_dataset("kgat") / "last-fm"
    if (folder / "train.txt").exists():
        pytest.skip("this copy of last-fm has train.txt")
    with pytest.raises(ValidationError, match=r"last-fm/train\.txt: required file is missing"):
        load_adapter("kgat", folder)


@pytest.mark.datasets
@pytest.mark.slow
def test_build_graph_ml100k_without_database(tmp_path: Path) -> None:
    from kgrec.build import build_graph
    from kgrec.config import load_config

    config = load_config(
        REPO / "configs" / "ml-100k.yaml",
        {
            "dataset.path": str(shared_dataset("ml-100k")),
            "dataset.kg_path": str(shared_dataset("ml-100k-kg")),
            "store.enabled": False,
            "artifacts": str(tmp_path / "artifacts"),
            "state_dir": str(tmp_path / "state"),
        },
    )
    report = build_graph(config)
    assert report.store is None
    assert report.graph_counts == report.input_counts
    counts = report.input_counts
    assert (counts["users"], counts["items"], counts["interactions"]) == (943, 1_682, 100_000)
    assert counts["triples"] == 107_153 + _flag_count(Path(config.dataset.path) / "u.item") + 943
    assert counts["interactions:test"] == counts["interactions:val"] == 943
    assert (tmp_path / "artifacts" / "graph.pt").is_file()
