"""Last.fm (HetRec 2011) adapter: a tiny fixture written here, and the real files when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgrec.data.adapters import load_adapter
from kgrec.data.validate import validate
from kgrec.errors import ValidationError
from tests.conftest import shared_dataset

HEADERS = {
    "user_artists.dat": "userID\tartistID\tweight",
    "artists.dat": "id\tname\turl\tpictureURL",
    "user_taggedartists.dat": "userID\tartistID\ttagID\tday\tmonth\tyear",
    "user_friends.dat": "userID\tfriendID",
}


def lastfm(folder: Path, plays: str = "2\t51\t13883\n2\t52\t11690\n3\t51\t5\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = {
        "user_artists.dat": plays,
        "artists.dat": "51\tDuran Duran\thttp://a\thttp://p\n52\tMorcheeba\thttp://b\thttp://q\n",
        # artist 99 is tagged but not listed in artists.dat (the real files have such rows)
        "user_taggedartists.dat": "2\t52\t13\t1\t4\t2009\n3\t52\t13\t1\t5\t2009\n"
        "2\t52\t15\t1\t4\t2009\n2\t99\t13\t1\t4\t2009\n",
        "user_friends.dat": "2\t3\n3\t2\n",
    }
    for name, body in rows.items():
        (folder / name).write_text(f"{HEADERS[name]}\n{body}", encoding="utf-8")
    (folder / "tags.dat").write_bytes(
        "tagID\ttagValue\r\n13\tChillout\r\n15\tTrip-Hop\r\n".encode("latin-1")
    )
    return folder


def test_plays_artists_tags_and_friends(tmp_path: Path) -> None:
    tables = load_adapter("lastfm", lastfm(tmp_path / "l"))
    dataset = validate(tables)
    inter = dataset.interactions
    assert len(inter) == 3
    assert sorted(inter["rating"].tolist()) == [5.0, 11690.0, 13883.0]  # play counts
    assert (inter["timestamp"] < 0).all()  # no listening times
    items = dataset.items.set_index("item_id")
    assert items.loc["51", "title"] == "Duran Duran"
    assert items.loc["52", "tags"] == "chillout, trip-hop"  # most used first
    triples = dataset.triples
    tags = triples[triples["relation"] == "has_tag"]
    assert sorted(tags["tail"]) == ["tag:chillout", "tag:trip-hop"]  # one per (artist, tag)
    friends = triples[triples["relation"] == "friend_of"]
    assert set(zip(friends["head"], friends["tail"], strict=True)) == {("2", "3"), ("3", "2")}
    assert any("1 tag assignments" in note for note in tables.notes)


def test_bad_play_count_names_file_and_line(tmp_path: Path) -> None:
    folder = lastfm(tmp_path / "l", plays="2\t51\t13883\n2\t52\tmany\n")
    with pytest.raises(ValidationError, match=r"user_artists.dat:3 \[rating\]"):
        validate(load_adapter("lastfm", folder))


@pytest.mark.datasets
def test_real_lastfm() -> None:
    dataset = validate(load_adapter("lastfm", shared_dataset("hetrec2011-lastfm-2k")))
    assert dataset.interactions["user_id"].nunique() == 1892
    assert len(dataset.items) == 17632
    assert len(dataset.interactions) == 92834
