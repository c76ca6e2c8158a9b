"""HetRec 2011 Last.fm 2K (``hetrec2011-lastfm-2k``) -> the dataset contract.

Files (tab-separated, with a header line):

- ``user_artists.dat`` (``userID, artistID, weight``): the listening counts of each user's top
  50 artists, the implicit feedback. The count becomes the interaction's ``rating`` (so
  "liked" means "listened to more than the user's average"); there is no listening time, so
  interactions have no ``timestamp`` and a temporal split falls back to a seeded per-user
  shuffle (see :mod:`kgrec.data.split`).
- ``artists.dat`` (``id, name, url, pictureURL``, UTF-8): the items, with ``name`` as their
  title and ``url``.
- ``user_taggedartists.dat`` (``userID, artistID, tagID, day, month, year``) and ``tags.dat``
  (``tagID, tagValue``, Latin-1): free-text tags users gave artists. Each (artist, tag) pair
  becomes one ``item -has_tag-> tag:<value>`` triple, and an artist's most used tags (at most
  :data:`MAX_TAGS`) its ``tags`` text column. Tag dates are the dataset's only time signal;
  with untimed listening they cannot be placed before or after a split, so every tag is kept.
- ``user_friends.dat`` (``userID, friendID``, optional): ``user -friend_of-> user`` triples.

Ids stay the dataset's own (as strings). Every row remembers its raw file and line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data.adapters._raw import (
    concat_tables,
    first_seen,
    member,
    raw_table,
    read_delimited,
    require,
)
from kgrec.data.contract import DatasetTables, Table

MAX_TAGS = 8
"""Tags named in an artist's text (its most used first)."""


def read_lastfm(folder: Path) -> DatasetTables:
    """HetRec 2011 Last.fm 2K: listening counts, artists, tags and friendships."""
    inter_path, artist_path = require(folder, "user_artists.dat", "artists.dat")
    inter, inter_lines = read_delimited(
        inter_path, ["user_id", "item_id", "rating"], "\t", header=True
    )
    artists, artist_lines = read_delimited(
        artist_path, ["item_id", "name", "url", "picture_url"], "\t", header=True
    )
    items = pd.DataFrame(
        {
            "item_id": artists["item_id"].str.strip(),
            "title": artists["name"].str.strip(),
            "url": artists["url"].str.strip(),
        }
    )
    inter = inter.assign(user_id=inter["user_id"].str.strip(), item_id=inter["item_id"].str.strip())
    triples: list[Table] = []
    entities: list[Table] = []
    notes: list[str] = []
    tag_path, names_path = folder / "user_taggedartists.dat", folder / "tags.dat"
    if tag_path.is_file() and names_path.is_file():
        tag_triples, tag_entities, text, dropped = _tags(
            tag_path, names_path, set(items["item_id"])
        )
        if dropped:
            notes.append(
                f"{dropped} tag assignments name artists missing from artists.dat: skipped"
            )
        triples.append(tag_triples)
        entities.append(tag_entities)
        items["tags"] = items["item_id"].map(text).fillna("")
    friend_path = folder / "user_friends.dat"
    if friend_path.is_file():
        friends, friend_lines = read_delimited(friend_path, ["head", "tail"], "\t", header=True)
        frame = pd.DataFrame(
            {
                "head": friends["head"].str.strip(),
                "relation": "friend_of",
                "tail": friends["tail"].str.strip(),
                "head_type": "user",
                "tail_type": "user",
            }
        )
        triples.append(raw_table("triples", frame, friend_path, friend_lines))
    return DatasetTables(
        interactions=raw_table("interactions", inter, inter_path, inter_lines),
        items=raw_table("items", items, artist_path, artist_lines),
        triples=concat_tables("triples", triples) if triples else None,
        entities=concat_tables("entities", entities) if entities else None,
        name="lastfm",
        notes=tuple(notes),
    )


def _tags(
    tag_path: Path, names_path: Path, artists: set[str]
) -> tuple[Table, Table, pd.Series, int]:
    """``item -has_tag-> tag:<value>`` triples (one per artist and tag), the tag entities, each
    artist's text of its most used tags, and how many assignments named unknown artists (the
    HetRec files tag some artists that ``artists.dat`` does not list; they are skipped)."""
    assigned, lines = read_delimited(
        tag_path, ["user_id", "item_id", "tag_id", "day", "month", "year"], "\t", header=True
    )
    names, _ = read_delimited(names_path, ["tag_id", "tag"], "\t", encoding="latin-1", header=True)
    value = (
        assigned["tag_id"]
        .str.strip()
        .map(
            dict(
                zip(names["tag_id"].str.strip(), names["tag"].str.strip().str.lower(), strict=True)
            )
        )
    )
    frame = pd.DataFrame(
        {"head": assigned["item_id"].str.strip().to_numpy(), "value": value, "line": lines}
    )
    known = member(frame["head"], artists)
    frame = frame[known & frame["value"].notna().to_numpy() & (frame["value"] != "").to_numpy()]
    uses = frame.groupby(["head", "value"], sort=False).size().rename("uses").reset_index()
    first = frame.drop_duplicates(["head", "value"])
    tails = "tag:" + first["value"]
    triples = pd.DataFrame(
        {
            "head": first["head"].to_numpy(),
            "relation": "has_tag",
            "tail": tails.to_numpy(),
            "head_type": "item",
            "tail_type": "tag",
        }
    )
    entities = pd.DataFrame({"entity_id": tails, "type": "tag", "name": first["value"]})
    line_numbers = first["line"].to_numpy(np.int64)
    top = uses.sort_values(["head", "uses", "value"], ascending=[True, False, True])
    text = top.groupby("head")["value"].agg(lambda t: ", ".join(t.head(MAX_TAGS)))
    return (
        raw_table("triples", triples, tag_path, line_numbers),
        first_seen("entities", tails, entities, tag_path, line_numbers),
        text,
        int((~known).sum()),
    )
