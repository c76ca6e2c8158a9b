"""MovieLens (GroupLens) formats -> the dataset contract.

- **ml-100k**: ``u.data`` (tab: user, item, rating, timestamp), ``u.item`` (``|``, Latin-1:
  id, title, release date, video release date, IMDb URL, 19 genre flags named in order by
  ``u.genre``), ``u.user`` (``|``: id, age, gender, occupation, zip code). Items get ``title``,
  ``year`` (release date, else the title's ``(yyyy)``), ``genres`` (``|``-joined) and ``url``;
  genres become ``item -has_genre-> genre:<Name>`` triples and occupations ``user
  -has_occupation-> occupation:<name>`` triples (so users with the same occupation share a
  node; age, gender and zip code stay user columns).
- **ml-100k + KG** (``kg_path``: the derived ml-100k Freebase KG, see its PROVENANCE.md):
  ``triples.csv`` (``head,relation,tail,source``; heads ``item:<ml-100k id>``, tails
  ``<type>:<freebase mid>``) and ``entities.csv`` (``entity_id,type,name,...``, including one
  ``item`` row per movie, which is skipped); optional ``item_map.csv`` (``ml100k_item_id``,
  ``freebase_id``, ...). The KG's ``genre`` type, relation and id prefix become ``fb_genre`` so
  Freebase genres stay apart from MovieLens' 19 genres; ``film`` tails (sequel / prequel)
  whose mid is an ml-100k movie in ``item_map.csv`` become that item, giving item-item edges.
  Triples whose item is not in ``u.item`` are dropped and counted in the notes.
- **ml-latest-small**: ``ratings.csv`` (``userId,movieId,rating,timestamp``), ``movies.csv``
  (``movieId,title,genres``; genres ``|``-separated, ``(no genres listed)`` for none), optional
  ``tags.csv`` (``userId,movieId,tag,timestamp``): tags, lower-cased and trimmed, become
  ``item -has_tag-> tag:<tag>`` triples, one per application, with the tagging user and time
  as provenance (``user_id``, ``timestamp``): tags a user applied after their training
  cut-off stay out of training (:func:`kgrec.data.split.facts_known_in_training`), and the
  item texts name the kept tags through the item's KG neighbours. There is no users table
  (users are the raters).
- **ml-1m**: ``ratings.dat`` (``user::item::rating::timestamp``), ``movies.dat``
  (``id::title::genres``), ``users.dat`` (``id::gender::age::occupation::zip``), all
  ``::``-separated Latin-1; occupation codes 0-20 are replaced by their names from the
  dataset's README, and genres become triples as for ml-100k.

Ids stay the datasets' own (as strings); entity ids are ``<type>:<name or mid>``. Every table
remembers the raw file and line of each row, so a bad rating is reported as
``u.data:57 [rating]``; entities derived from values point at the line they first appear on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data.adapters._raw import (
    MAX_PROBLEMS,
    concat_tables,
    first_seen,
    member,
    raw_table,
    read_delimited,
    require,
    too_many_problems,
)
from kgrec.data.contract import DatasetTables, Table
from kgrec.errors import Problem, ValidationError

ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip
"""ml-1m occupation codes 0-20 (its README)."""
KG_RENAMES = {"genre": "fb_genre"}
"""KG entity types / relations / id prefixes renamed to stay apart from MovieLens' own."""
KG_ENTITY_COLUMNS = [
    "entity_id", "type", "name", "lang", "name_source", "freebase_id", "other_name", "other_types",
]  # fmt: skip
ITEM_MAP_COLUMNS = [
    "ml100k_item_id", "ml100k_title", "ml1m_movie_id", "ml1m_title", "freebase_id",
    "match_kind", "match_note", "in_kg",
]  # fmt: skip


def _year(titles: pd.Series) -> pd.Series:
    """``yyyy`` from a title ending in ``(yyyy)``, else ``""``."""
    return titles.str.extract(r"\((\d{4})\)\s*$", expand=False).fillna("")


def _split_genres(genres: pd.Series) -> pd.Series:
    """``A|B`` -> ``["A", "B"]``; empty and ``(no genres listed)`` -> ``[]``."""
    cleaned = genres.str.strip().replace("(no genres listed)", "")
    return cleaned.str.split("|").map(lambda g: [x for x in g if x])


def _value_triples(
    heads: pd.Series,
    values: pd.Series,
    relation: str,
    kind: str,
    head_type: str,
    path: Path,
    lines: np.ndarray,
) -> tuple[Table, Table]:
    """``head -relation-> <kind>:<value>`` triples (one per head and list element) and the
    ``kind`` entities, both keeping the raw line they come from."""
    exploded = pd.DataFrame({"head": heads.to_numpy(), "value": values.to_numpy(), "line": lines})
    if exploded["value"].map(lambda v: isinstance(v, list)).any():
        exploded = exploded.explode("value")
    exploded = exploded[exploded["value"].notna() & (exploded["value"] != "")]
    exploded = exploded.drop_duplicates(["head", "value"])
    tails = f"{kind}:" + exploded["value"].astype(str)
    triples = pd.DataFrame(
        {
            "head": exploded["head"].to_numpy(),
            "relation": relation,
            "tail": tails.to_numpy(),
            "head_type": head_type,
            "tail_type": kind,
        }
    )
    entities = pd.DataFrame({"entity_id": tails, "type": kind, "name": exploded["value"]})
    line_numbers = exploded["line"].to_numpy()
    return (
        raw_table("triples", triples, path, line_numbers),
        first_seen("entities", tails, entities, path, line_numbers),
    )


def _occupation_triples(users: pd.DataFrame, path: Path, lines: np.ndarray) -> tuple[Table, Table]:
    """``user -has_occupation-> occupation:<name>`` triples and the occupation entities."""
    return _value_triples(
        users["user_id"], users["occupation"], "has_occupation", "occupation", "user", path, lines
    )


# ------------------------------------------------------------------------------- ml-100k


def read_ml100k(folder: Path, *, kg_path: Path | None = None) -> DatasetTables:
    """MovieLens 100K, plus (with ``kg_path``) its Freebase knowledge graph."""
    data_path, item_path, user_path, genre_path = require(
        folder, "u.data", "u.item", "u.user", "u.genre"
    )
    inter, inter_lines = read_delimited(
        data_path, ["user_id", "item_id", "rating", "timestamp"], "\t"
    )
    genre_names, genre_lines = read_delimited(
        genre_path, ["name", "index"], "|", encoding="latin-1"
    )
    order = pd.to_numeric(genre_names["index"], errors="coerce")
    if order.isna().any():
        bad = int(np.flatnonzero(order.isna().to_numpy())[0])
        problem = Problem(genre_path, int(genre_lines[bad]), "index", "genre index is not a number")
        raise ValidationError([problem])
    genre_cols = genre_names["name"].iloc[np.argsort(order.to_numpy(), kind="stable")].tolist()
    raw_items, item_lines = read_delimited(
        item_path,
        ["item_id", "title", "release_date", "video_release_date", "url", *genre_cols],
        "|",
        encoding="latin-1",
    )
    flags = raw_items[genre_cols]
    bad_flags = ~flags.isin(["0", "1"]).to_numpy()
    if bad_flags.any():
        rows, cols = np.nonzero(bad_flags)
        problems = [
            Problem(item_path, int(item_lines[r]), genre_cols[c], "genre flag must be 0 or 1")
            for r, c in zip(rows[:MAX_PROBLEMS], cols[:MAX_PROBLEMS], strict=True)
        ]
        raise too_many_problems(item_path, problems, len(rows))
    genre_array = np.asarray(genre_cols, dtype=object)
    is_set = flags.to_numpy() == "1"
    genre_lists = pd.Series([genre_array[row].tolist() for row in is_set], dtype=object)
    release = raw_items["release_date"].str.strip()
    title = raw_items["title"].str.strip()
    items = pd.DataFrame(
        {
            "item_id": raw_items["item_id"].str.strip(),
            "title": title,
            "year": release.str[-4:].where(release.str.fullmatch(r".*\d{4}"), _year(title)),
            "genres": genre_lists.map("|".join),
            "url": raw_items["url"].str.strip(),
        }
    )
    genre_triples, genre_entities = _value_triples(
        items["item_id"], genre_lists, "has_genre", "genre", "item", item_path, item_lines
    )
    users, user_lines = read_delimited(
        user_path, ["user_id", "age", "gender", "occupation", "zip_code"], "|", encoding="latin-1"
    )
    users = users.apply(lambda column: column.str.strip())
    occupation_triples, occupation_entities = _occupation_triples(users, user_path, user_lines)
    triples = [genre_triples, occupation_triples]
    entities = [genre_entities, occupation_entities]
    notes: list[str] = []
    if kg_path is not None:
        kg_triples, kg_entities, kg_notes = _read_ml100k_kg(Path(kg_path), items["item_id"])
        triples.append(kg_triples)
        entities.append(kg_entities)
        notes += kg_notes
    return DatasetTables(
        interactions=raw_table("interactions", inter, data_path, inter_lines),
        items=raw_table("items", items, item_path, item_lines),
        users=raw_table("users", users, user_path, user_lines),
        triples=concat_tables("triples", triples),
        entities=concat_tables("entities", entities),
        name="ml-100k+kg" if kg_path is not None else "ml-100k",
        notes=tuple(notes),
    )


def _kg_rename(ids: pd.Series) -> pd.Series:
    """``genre:<mid>`` -> ``fb_genre:<mid>`` (ids of renamed KG types)."""
    for old, new in KG_RENAMES.items():
        ids = ids.str.replace(f"^{old}:", f"{new}:", regex=True)
    return ids


def _read_ml100k_kg(folder: Path, item_ids: pd.Series) -> tuple[Table, Table, list[str]]:
    """Triples and entities of the ml-100k Freebase KG, keyed by ml-100k item ids."""
    triple_path, entity_path = require(folder, "triples.csv", "entities.csv")
    raw, lines = read_delimited(
        triple_path, ["head", "relation", "tail", "source"], ",", header=True
    )
    head = raw["head"].str.strip().str.partition(":")
    head_kind, head_id = head[0], head[2]
    tail = _kg_rename(raw["tail"].str.strip())
    tail_kind = tail.str.partition(":")[0]
    film_items = _film_items(folder / "item_map.csv", item_ids)
    linked = (tail_kind == "film").to_numpy() & member(tail, film_items.index)
    tail = tail.where(~linked, tail.map(film_items))
    tail_kind = tail_kind.where(~linked, "item")
    keep = (head_kind == "item").to_numpy() & member(head_id, item_ids)
    notes = []
    if (~keep).any():
        notes.append(
            f"{int((~keep).sum())} of {len(keep)} KG triples dropped ({triple_path.name}): "
            "their head is not an item of u.item"
        )
    if linked[keep].any():
        notes.append(
            f"{int(linked[keep].sum())} KG sequel/prequel tails are ml-100k movies "
            "(item_map.csv): linked item to item"
        )
    triples = pd.DataFrame(
        {
            "head": head_id[keep].to_numpy(),
            "relation": raw["relation"][keep].str.strip().replace(KG_RENAMES).to_numpy(),
            "tail": tail[keep].to_numpy(),
            "head_type": "item",
            "tail_type": tail_kind[keep].to_numpy(),
        }
    )
    ent, ent_lines = read_delimited(entity_path, KG_ENTITY_COLUMNS, ",", header=True)
    ent_ids = _kg_rename(ent["entity_id"].str.strip())
    used = member(ent_ids, triples["tail"]) & (ent["type"].str.strip() != "item").to_numpy()
    entities = pd.DataFrame(
        {
            "entity_id": ent_ids[used],
            "type": ent["type"][used].str.strip().replace(KG_RENAMES),
            "name": ent["name"][used].str.strip(),
        }
    )
    return (
        raw_table("triples", triples, triple_path, lines[keep]),
        raw_table("entities", entities, entity_path, ent_lines[used]),
        notes,
    )


def _film_items(path: Path, item_ids: pd.Series) -> pd.Series:
    """``film:<mid>`` -> ml-100k item id (the lowest, for the few films listed twice)."""
    if not path.is_file():
        return pd.Series(dtype=object)
    frame, _ = read_delimited(path, ITEM_MAP_COLUMNS, ",", header=True)
    frame = frame.apply(lambda column: column.str.strip())
    frame = frame[
        (frame["freebase_id"] != "").to_numpy() & member(frame["ml100k_item_id"], item_ids)
    ]
    frame = frame.assign(order=pd.to_numeric(frame["ml100k_item_id"], errors="coerce"))
    frame = frame.sort_values("order", kind="stable").drop_duplicates("freebase_id")
    return pd.Series(frame["ml100k_item_id"].to_numpy(), index="film:" + frame["freebase_id"])


# ------------------------------------------------------------------------ ml-latest-small


def read_ml_latest(folder: Path) -> DatasetTables:
    """MovieLens latest-small: ratings, movies with genres, and free-text tags."""
    rating_path, movie_path = require(folder, "ratings.csv", "movies.csv")
    inter, inter_lines = read_delimited(
        rating_path, ["user_id", "item_id", "rating", "timestamp"], ",", header=True
    )
    movies, movie_lines = read_delimited(
        movie_path, ["item_id", "title", "genres"], ",", header=True
    )
    genre_lists = _split_genres(movies["genres"])
    title = movies["title"].str.strip()
    items = pd.DataFrame(
        {
            "item_id": movies["item_id"].str.strip(),
            "title": title,
            "year": _year(title),
            "genres": genre_lists.map("|".join),
        }
    )
    genre_triples, genre_entities = _value_triples(
        items["item_id"], genre_lists, "has_genre", "genre", "item", movie_path, movie_lines
    )
    triples, entities = [genre_triples], [genre_entities]
    tag_path = folder / "tags.csv"
    if tag_path.is_file():
        tags, tag_lines = read_delimited(
            tag_path, ["user_id", "item_id", "tag", "timestamp"], ",", header=True
        )
        tag = tags["tag"].str.strip().str.lower()
        applied = (tag != "").to_numpy()
        tails = "tag:" + tag[applied]
        frame = pd.DataFrame(
            {
                "head": tags["item_id"].str.strip()[applied].to_numpy(),
                "relation": "has_tag",
                "tail": tails.to_numpy(),
                "head_type": "item",
                "tail_type": "tag",
                "user_id": tags["user_id"].str.strip()[applied].to_numpy(),
                "timestamp": tags["timestamp"].str.strip()[applied].to_numpy(),
            }
        )
        lines = np.asarray(tag_lines)[applied]
        triples.append(raw_table("triples", frame, tag_path, lines))
        named = pd.DataFrame({"entity_id": tails, "type": "tag", "name": tag[applied]})
        entities.append(first_seen("entities", tails, named, tag_path, lines))
    return DatasetTables(
        interactions=raw_table("interactions", inter, rating_path, inter_lines),
        items=raw_table("items", items, movie_path, movie_lines),
        triples=concat_tables("triples", triples),
        entities=concat_tables("entities", entities),
        name="ml-latest-small",
    )


# ---------------------------------------------------------------------------------- ml-1m


def read_ml1m(folder: Path) -> DatasetTables:
    """MovieLens 1M (``::``-separated, Latin-1)."""
    rating_path, movie_path, user_path = require(folder, "ratings.dat", "movies.dat", "users.dat")
    inter, inter_lines = read_delimited(
        rating_path, ["user_id", "item_id", "rating", "timestamp"], "::", encoding="latin-1"
    )
    movies, movie_lines = read_delimited(
        movie_path, ["item_id", "title", "genres"], "::", encoding="latin-1"
    )
    genre_lists = _split_genres(movies["genres"])
    title = movies["title"].str.strip()
    items = pd.DataFrame(
        {
            "item_id": movies["item_id"].str.strip(),
            "title": title,
            "year": _year(title),
            "genres": genre_lists.map("|".join),
        }
    )
    genre_triples, genre_entities = _value_triples(
        items["item_id"], genre_lists, "has_genre", "genre", "item", movie_path, movie_lines
    )
    users, user_lines = read_delimited(
        user_path, ["user_id", "gender", "age", "occupation", "zip_code"], "::", encoding="latin-1"
    )
    users = users.apply(lambda column: column.str.strip())
    codes = pd.to_numeric(users["occupation"], errors="coerce")
    bad = np.flatnonzero(~codes.isin(range(len(ML1M_OCCUPATIONS))).to_numpy())
    if len(bad):
        problems = [
            Problem(
                user_path,
                int(user_lines[i]),
                "occupation",
                f"{users['occupation'].iat[i]!r} is not an occupation code 0-20",
            )
            for i in bad[:MAX_PROBLEMS]
        ]
        raise too_many_problems(user_path, problems, len(bad))
    users["occupation"] = np.asarray(ML1M_OCCUPATIONS, dtype=object)[codes.astype(int)]
    occupation_triples, occupation_entities = _occupation_triples(users, user_path, user_lines)
    return DatasetTables(
        interactions=raw_table("interactions", inter, rating_path, inter_lines),
        items=raw_table("items", items, movie_path, movie_lines),
        users=raw_table("users", users, user_path, user_lines),
        triples=concat_tables("triples", [genre_triples, occupation_triples]),
        entities=concat_tables("entities", [genre_entities, occupation_entities]),
        name="ml-1m",
    )
