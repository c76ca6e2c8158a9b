"""MovieLens (GroupLens) formats -> the dataset contract.

- **ml-100k**: ``u.data`` (tab: user, item, rating, timestamp), ``u.item`` (``|``, Latin-1:
  id, title, release date, video release date, IMDb URL, 19 genre flags named by
  ``u.genre``), ``u.user`` (``|``: id, age, gender, occupation, zip). Genres become
  ``item -has_genre-> genre:<Name>`` triples, occupations ``user -has_occupation->
  occupation:<name>`` triples.
- **ml-100k + KG** (``kg_path``, the derived ml-100k Freebase KG: ``triples.csv`` with heads
  ``item:<ml-100k id>``, ``entities.csv`` with typed, named entities): every triple whose item
  exists is added; the KG's entity type and relation ``genre`` become ``fb_genre`` so Freebase
  genres do not merge with MovieLens genres.
- **ml-latest-small**: ``ratings.csv``, ``movies.csv`` (genres ``|``-separated), optional
  ``tags.csv``: tags (lower-cased, trimmed) become ``item -has_tag-> tag:<tag>`` triples and an
  item text column ``tags``.
- **ml-1m**: ``ratings.dat``, ``movies.dat``, ``users.dat`` (``::``-separated, Latin-1);
  occupation codes are replaced by their names from the dataset's README.

Ids stay the datasets' own (as strings); entity ids are prefixed by their type.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data.adapters._raw import raw_table, read_delimited, require
from kgrec.data.contract import DatasetTables, Table

ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip
KG_RENAMES = {"genre": "fb_genre"}
"""KG entity types / relations renamed to stay apart from MovieLens' own."""


def _year(titles: pd.Series) -> pd.Series:
    return titles.str.extract(r"\((\d{4})\)\s*$", expand=False).fillna("")


def _genre_triples(
    items: pd.DataFrame, genre_lists: pd.Series, path: Path, lines: np.ndarray
) -> tuple[Table, pd.DataFrame]:
    """``item -has_genre-> genre:<g>`` triples (keeping each item's line) and genre entities."""
    exploded = pd.DataFrame(
        {"item_id": items["item_id"], "genre": genre_lists, "line": lines}
    ).explode("genre")
    exploded = exploded[exploded["genre"].notna() & (exploded["genre"] != "")]
    triples = pd.DataFrame(
        {
            "head": exploded["item_id"].to_numpy(),
            "relation": "has_genre",
            "tail": ("genre:" + exploded["genre"]).to_numpy(),
            "head_type": "item",
            "tail_type": "genre",
        }
    )
    names = sorted(exploded["genre"].unique())
    entities = pd.DataFrame(
        {"entity_id": [f"genre:{g}" for g in names], "type": "genre", "name": names}
    )
    return raw_table("triples", triples, path, exploded["line"].to_numpy()), entities


def _concat_tables(name: str, tables: list[Table]) -> Table:
    """One table from several raw files; every row keeps its own file and line."""
    frame = pd.concat([t.frame for t in tables], ignore_index=True)
    lines = np.concatenate([np.asarray([t.line_of(i) for i in range(len(t))]) for t in tables])
    source_of = np.concatenate([np.full(len(t), k) for k, t in enumerate(tables)])
    return Table(
        name,
        frame,
        tables[0].path,
        lines=lines,
        sources=tuple(t.path for t in tables),
        source_of=source_of,
    )


# ------------------------------------------------------------------------------- ml-100k


def read_ml100k(folder: Path, *, kg_path: Path | None = None) -> DatasetTables:
    """MovieLens 100K (plus, with ``kg_path``, its Freebase knowledge graph)."""
    data_path, item_path, user_path, genre_path = require(
        folder, "u.data", "u.item", "u.user", "u.genre"
    )
    inter, inter_lines = read_delimited(
        data_path, ["user_id", "item_id", "rating", "timestamp"], "\t"
    )
    genre_names, _ = read_delimited(genre_path, ["name", "index"], "|", encoding="latin-1")
    genre_cols = genre_names.sort_values("index", key=lambda s: s.astype(int))["name"].tolist()
    raw_items, item_lines = read_delimited(
        item_path,
        ["item_id", "title", "release_date", "video_release_date", "url", *genre_cols],
        "|",
        encoding="latin-1",
    )
    flags = raw_items[genre_cols].to_numpy() == "1"
    genre_lists = pd.Series(
        [[g for g, f in zip(genre_cols, row, strict=True) if f] for row in flags]
    )
    items = pd.DataFrame(
        {
            "item_id": raw_items["item_id"],
            "title": raw_items["title"].str.strip(),
            "year": raw_items["release_date"]
            .str[-4:]
            .where(raw_items["release_date"].str.len() >= 4, _year(raw_items["title"])),
            "genres": genre_lists.map("|".join),
            "url": raw_items["url"],
        }
    )
    genre_triples, genre_entities = _genre_triples(items, genre_lists, item_path, item_lines)

    users, user_lines = read_delimited(
        user_path, ["user_id", "age", "gender", "occupation", "zip_code"], "|", encoding="latin-1"
    )
    occ = users["occupation"].str.strip()
    occupation_triples = raw_table(
        "triples",
        pd.DataFrame(
            {
                "head": users["user_id"],
                "relation": "has_occupation",
                "tail": "occupation:" + occ,
                "head_type": "user",
                "tail_type": "occupation",
            }
        ),
        user_path,
        user_lines,
    )
    occupations = sorted(occ.unique())
    entities = [
        genre_entities,
        pd.DataFrame(
            {
                "entity_id": [f"occupation:{o}" for o in occupations],
                "type": "occupation",
                "name": occupations,
            }
        ),
    ]
    triple_tables = [genre_triples, occupation_triples]
    notes: list[str] = []
    entity_path = genre_path
    if kg_path is not None:
        kg_triples, kg_entities, kg_notes = _read_ml100k_kg(Path(kg_path), set(items["item_id"]))
        triple_tables.append(kg_triples)
        entities.append(kg_entities.frame)
        notes += kg_notes
        entity_path = kg_entities.path
    entity_frame = pd.concat(entities, ignore_index=True)
    return DatasetTables(
        interactions=raw_table("interactions", inter, data_path, inter_lines),
        items=raw_table("items", items, item_path, item_lines),
        users=raw_table("users", users, user_path, user_lines),
        triples=_concat_tables("triples", triple_tables),
        entities=raw_table("entities", entity_frame, entity_path, np.arange(len(entity_frame)) + 1),
        name="ml-100k+kg" if kg_path is not None else "ml-100k",
        notes=tuple(notes),
    )


def _read_ml100k_kg(folder: Path, item_ids: set[str]) -> tuple[Table, Table, list[str]]:
    """Triples and entities of the ml-100k Freebase KG, keyed by ml-100k item ids."""
    triple_path, entity_path = require(folder, "triples.csv", "entities.csv")
    raw, lines = read_delimited(
        triple_path, ["head", "relation", "tail", "source"], ",", header=True
    )
    head_parts = raw["head"].str.partition(":")
    head_kind, head_id = head_parts[0], head_parts[2]
    tail_kind = raw["tail"].str.partition(":")[0].replace(KG_RENAMES)
    keep = (head_kind == "item") & head_id.isin(item_ids)
    notes = []
    if int((~keep).sum()):
        notes.append(f"{int((~keep).sum())} KG triples dropped: their item is not in u.item")
    triples = pd.DataFrame(
        {
            "head": head_id[keep].to_numpy(),
            "relation": raw["relation"][keep].replace(KG_RENAMES).to_numpy(),
            "tail": raw["tail"][keep].to_numpy(),
            "head_type": "item",
            "tail_type": tail_kind[keep].to_numpy(),
        }
    )
    ent, ent_lines = read_delimited(
        entity_path,
        ["entity_id", "type", "name", "lang", "name_source", "freebase_id", "other_name",
         "other_types"],
        ",",
        header=True,
    )  # fmt: skip
    used = ent["entity_id"].isin(set(triples["tail"])) & (ent["type"] != "item")
    entities = pd.DataFrame(
        {
            "entity_id": ent["entity_id"][used],
            "type": ent["type"][used].replace(KG_RENAMES),
            "name": ent["name"][used],
        }
    )
    return (
        raw_table("triples", triples, triple_path, lines[keep.to_numpy()]),
        raw_table("entities", entities, entity_path, ent_lines[used.to_numpy()]),
        notes,
    )


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
    genre_lists = movies["genres"].map(
        lambda g: [] if g in ("", "(no genres listed)") else g.split("|")
    )
    items = pd.DataFrame(
        {
            "item_id": movies["item_id"],
            "title": movies["title"].str.strip(),
            "year": _year(movies["title"].str.strip()),
            "genres": genre_lists.map("|".join),
        }
    )
    genre_triples, entities = _genre_triples(items, genre_lists, movie_path, movie_lines)
    triple_tables = [genre_triples]
    entity_frames = [entities]
    tag_path = folder / "tags.csv"
    if tag_path.exists():
        tags, tag_lines = read_delimited(
            tag_path, ["user_id", "item_id", "tag", "timestamp"], ",", header=True
        )
        tags = tags.assign(tag=tags["tag"].str.strip().str.lower(), line=tag_lines)
        tags = tags[tags["tag"] != ""].drop_duplicates(["item_id", "tag"])
        text = tags.groupby("item_id")["tag"].agg(lambda t: ", ".join(sorted(t)))
        items["tags"] = items["item_id"].map(text).fillna("")
        triple_tables.append(
            raw_table(
                "triples",
                pd.DataFrame(
                    {
                        "head": tags["item_id"].to_numpy(),
                        "relation": "has_tag",
                        "tail": ("tag:" + tags["tag"]).to_numpy(),
                        "head_type": "item",
                        "tail_type": "tag",
                    }
                ),
                tag_path,
                tags["line"].to_numpy(),
            )
        )
        names = sorted(tags["tag"].unique())
        entity_frames.append(
            pd.DataFrame({"entity_id": [f"tag:{t}" for t in names], "type": "tag", "name": names})
        )
    entity_frame = pd.concat(entity_frames, ignore_index=True)
    return DatasetTables(
        interactions=raw_table("interactions", inter, rating_path, inter_lines),
        items=raw_table("items", items, movie_path, movie_lines),
        triples=_concat_tables("triples", triple_tables),
        entities=raw_table("entities", entity_frame, movie_path, np.arange(len(entity_frame)) + 1),
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
    genre_lists = movies["genres"].map(lambda g: g.split("|") if g else [])
    items = pd.DataFrame(
        {
            "item_id": movies["item_id"],
            "title": movies["title"].str.strip(),
            "year": _year(movies["title"].str.strip()),
            "genres": genre_lists.map("|".join),
        }
    )
    genre_triples, entities = _genre_triples(items, genre_lists, movie_path, movie_lines)
    users, user_lines = read_delimited(
        user_path, ["user_id", "gender", "age", "occupation", "zip_code"], "::", encoding="latin-1"
    )
    codes = pd.to_numeric(users["occupation"], errors="coerce")
    users["occupation"] = codes.map(
        lambda c: ML1M_OCCUPATIONS[int(c)] if c == c and 0 <= c < len(ML1M_OCCUPATIONS) else ""
    )
    return DatasetTables(
        interactions=raw_table("interactions", inter, rating_path, inter_lines),
        items=raw_table("items", items, movie_path, movie_lines),
        users=raw_table("users", users, user_path, user_lines),
        triples=genre_triples,
        entities=raw_table("entities", entities, movie_path, np.arange(len(entities)) + 1),
        name="ml-1m",
    )
