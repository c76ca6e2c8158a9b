"""A synthetic dataset in kgrec's contract, at any size, streamed to disk.

``N`` users, ``M`` items and ``--interactions`` (user, item) pairs, each pair at most once:

- **Popularity** follows a power law: item ``r`` (by rank) is drawn with probability
  proportional to ``r ** -alpha`` (``--alpha``, default 0.8; a random permutation decides
  which item id gets which rank).
- **Activity** is heavy-tailed too: a user's number of interactions is log-normal (sigma 1),
  at least ``--min-per-user``, rescaled so the total is exact.
- **Time**: every user starts at a uniformly drawn moment of a ``--days`` window and then
  works in sessions: within a session, items follow each other after about 3 minutes;
  sessions start about 4 days apart (both exponential). Timestamps are integer seconds.
- **Ratings** 1-5 (more 4s than 1s).
- **Knowledge graph**: ``genre`` (``--genres``, drawn with their own power law, 1-3 per
  item), ``person`` entities (about one per 4 items, drawn with a power law): one
  ``directed_by`` and 2-4 ``starring`` triples per item.
- **Texts**: each item has a title and a one-sentence description built from word lists;
  people have names; users have ``age`` and ``country``.

Interactions are generated and written a block of users at a time (``pyarrow`` writers), so
10M rows never exist as Python objects; memory stays at a few hundred MB. The same seed and
sizes give the same files. Output: ``interactions``, ``items``, ``users``, ``triples`` and
``entities`` as Parquet (default) or CSV.

Usage::

    python benchmarks/synthetic.py OUT --interactions 10000000 --users 100000 --items 20000
    python benchmarks/synthetic.py OUT --interactions 1000000 --format csv

Also importable: :func:`generate` returns a :class:`SyntheticReport`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

START = 1_500_000_000
"""First possible timestamp (2017-07-14), seconds."""
USERS_PER_BLOCK = 20_000


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split(sep))


ADJECTIVES = _words(
    "Silent Golden Broken Hidden Last Crimson Frozen Wild Quiet Iron Lost Bright Dark Hollow "
    "Electric Secret Distant Burning Northern Paper Glass Velvet Savage Gentle Endless"
)
NOUNS = _words(
    "River Crown Signal Harbor Engine Garden Empire Canyon Promise Mirror Storm Letter Island "
    "Machine Forest Citadel Orchard Bridge Voyage Station Tide Lantern Circus Frontier Archive"
)
THEMES = _words(
    "a family secret, a long journey home, an unlikely friendship, a heist gone wrong, "
    "first love, a small-town mystery, a war at sea, a rivalry between sisters, "
    "life on a distant planet, a courtroom battle, a musician's comeback, a haunted house, "
    "a political conspiracy, a coming of age, a race against time, a forbidden romance",
    ",",
)
SETTINGS = _words(
    "Paris, a mining town, the Arctic, 1920s Chicago, a space station, rural Japan, "
    "the Amazon, a boarding school, post-war Berlin, a lighthouse, Las Vegas, the Sahara",
    ",",
)
GENRES = _words(
    "Drama Comedy Thriller Action Romance Horror Documentary Animation Crime Adventure "
    "Fantasy Mystery Sci-Fi Western Musical War Family History Biography Sport Noir Satire "
    "Teen Superhero Disaster Spy Martial-Arts Road Heist Mockumentary"
)
FIRST = _words(
    "Ada Ben Cleo Dev Eli Fay Gus Hana Ivo Jun Kai Lea Max Nia Oto Pia Raj Sol Tea Uma Vik "
    "Wen Xia Yui Zoe"
)
LAST = _words(
    "Abe Baker Costa Diaz Endo Fox Gray Holm Ito Jones Kahn Lopez Mori Nash Ortiz Park Quinn "
    "Reyes Sato Tran Ueda Vega Wolfe Xu Young Zhou"
)
COUNTRIES = _words("US GB FR DE JP BR IN KR ES IT MX CA SE NG AU")


@dataclass(frozen=True)
class SyntheticReport:
    """What :func:`generate` wrote."""

    folder: str
    format: str
    users: int
    items: int
    interactions: int
    triples: int
    entities: int
    seed: int
    seconds: float


def generate(
    folder: Path | str,
    *,
    interactions: int = 1_000_000,
    users: int = 10_000,
    items: int = 5_000,
    genres: int = 30,
    alpha: float = 0.8,
    min_per_user: int = 5,
    days: int = 730,
    seed: int = 0,
    fmt: str = "parquet",
) -> SyntheticReport:
    """Write a contract folder (see the module docstring); returns what it holds."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"format must be parquet or csv, got {fmt!r}")
    if interactions > users * items // 2:
        raise ValueError("ask for at most half of all user-item pairs")
    if users * min_per_user > interactions:
        raise ValueError(f"{users} users with at least {min_per_user} need more interactions")
    clock = time.perf_counter()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_user = _activity(rng, users, interactions, min_per_user, items)
    popularity = _power_law(items, alpha)[rng.permutation(items)]
    cumulative = np.cumsum(popularity)

    item_ids = _ids("i", items)
    with _Writer(folder / "interactions", fmt) as out:
        for first in range(0, users, USERS_PER_BLOCK):
            block = per_user[first : first + USERS_PER_BLOCK]
            out.write(_interaction_block(rng, first, block, cumulative, item_ids, days))
    n_people = max(1, items // 4)
    with _Writer(folder / "items", fmt) as out:
        out.write(_items(rng, item_ids))
    with _Writer(folder / "users", fmt) as out:
        out.write(_users(rng, users))
    triples = _triples(rng, item_ids, genres, n_people)
    with _Writer(folder / "triples", fmt) as out:
        out.write(triples)
    entities = _entities(rng, genres, n_people)
    with _Writer(folder / "entities", fmt) as out:
        out.write(entities)
    return SyntheticReport(
        folder=str(folder),
        format=fmt,
        users=users,
        items=items,
        interactions=int(per_user.sum()),
        triples=triples.num_rows,
        entities=entities.num_rows,
        seed=seed,
        seconds=round(time.perf_counter() - clock, 1),
    )


def _power_law(n: int, alpha: float) -> np.ndarray:
    """Probabilities ``[n]`` proportional to ``rank ** -alpha``."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -alpha
    return weights / weights.sum()


def _activity(
    rng: np.random.Generator, users: int, total: int, minimum: int, items: int
) -> np.ndarray:
    """Interactions per user ``[users]``: log-normal, at least ``minimum``, at most half
    the catalogue, summing to exactly ``total``."""
    cap = max(minimum, items // 2)
    raw = rng.lognormal(0.0, 1.0, users)
    counts = np.clip(np.floor(minimum + raw / raw.sum() * (total - minimum * users)), minimum, cap)
    counts = counts.astype(np.int64)
    while (short := total - int(counts.sum())) != 0:
        room = np.flatnonzero(counts < cap) if short > 0 else np.flatnonzero(counts > minimum)
        pick = rng.choice(room, min(abs(short), room.size), replace=False)
        counts[pick] += 1 if short > 0 else -1
    return counts


def _interaction_block(
    rng: np.random.Generator,
    first_user: int,
    counts: np.ndarray,
    cumulative: np.ndarray,
    item_ids: pa.Array,
    days: int,
) -> pa.Table:
    """The interactions of users ``first_user ...`` (``counts[k]`` each, distinct items)."""
    n_items = cumulative.size
    user = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    item = np.empty(user.size, dtype=np.int64)
    todo = np.arange(user.size)
    while todo.size:  # redraw the items a user already has until every pair is distinct
        item[todo] = np.searchsorted(cumulative, rng.random(todo.size) * cumulative[-1])
        item[todo] = np.minimum(item[todo], n_items - 1)
        key = user * n_items + item
        order = np.argsort(key, kind="stable")
        repeat = np.zeros(user.size, dtype=bool)
        repeat[order[1:]] = key[order[1:]] == key[order[:-1]]
        todo = np.flatnonzero(repeat)
    # time: a start per user, then gaps of ~3 minutes within and ~4 days between sessions
    new_session = rng.random(user.size) < 0.15
    gaps = np.where(
        new_session, rng.exponential(4 * 86_400, user.size), rng.exponential(180, user.size)
    )
    starts = np.zeros(user.size, dtype=bool)
    starts[np.cumsum(counts)[:-1]] = True
    starts[0] = True
    gaps[starts] = 0.0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[starts], counts)
    begin = rng.integers(0, days * 86_400, counts.size)
    timestamp = START + np.repeat(begin, counts) + elapsed.astype(np.int64)
    rating = rng.choice(
        np.arange(1, 6, dtype=np.float64), user.size, p=[0.06, 0.11, 0.27, 0.34, 0.22]
    )
    return pa.table(
        {
            "user_id": _ids("u", counts.size, offset=first_user).take(pa.array(user)),
            "item_id": item_ids.take(pa.array(item)),
            "rating": rating,
            "timestamp": timestamp,
        }
    )


def _ids(prefix: str, n: int, offset: int = 0) -> pa.Array:
    """``prefix0000001 ...`` as a string array (7 digits, zero-padded)."""
    numbers = pa.array(np.arange(offset, offset + n, dtype=np.int64)).cast(pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(numbers, 7, "0"), "")


def _items(rng: np.random.Generator, item_ids: pa.Array) -> pa.Table:
    n = len(item_ids)
    adjective = np.array(ADJECTIVES)[rng.integers(0, len(ADJECTIVES), n)]
    noun = np.array(NOUNS)[rng.integers(0, len(NOUNS), n)]
    sequel = np.where(rng.random(n) < 0.1, " II", "")
    title = np.char.add(np.char.add(np.char.add("The ", adjective), np.char.add(" ", noun)), sequel)
    theme = np.array(THEMES)[rng.integers(0, len(THEMES), n)]
    setting = np.array(SETTINGS)[rng.integers(0, len(SETTINGS), n)]
    description = np.char.add(np.char.add(np.char.add("A story of ", theme), " in "), setting)
    return pa.table(
        {
            "item_id": item_ids,
            "title": pa.array(title.astype(object)),
            "year": rng.integers(1950, 2025, n),
            "description": pa.array(np.char.add(description, ".").astype(object)),
        }
    )


def _users(rng: np.random.Generator, n: int) -> pa.Table:
    return pa.table(
        {
            "user_id": _ids("u", n),
            "age": rng.integers(13, 80, n),
            "country": pa.array(
                np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n)].astype(object)
            ),
        }
    )


def _triples(rng: np.random.Generator, item_ids: pa.Array, genres: int, people: int) -> pa.Table:
    n = len(item_ids)
    genre_p, person_p = _power_law(genres, 1.0), _power_law(people, 0.7)
    heads, relations, tails = [], [], []
    per_item = rng.integers(1, 4, n)  # genres per item (duplicates dropped below)
    item = np.repeat(np.arange(n), per_item)
    heads.append(item)
    relations.append(np.full(item.size, 0))
    tails.append(rng.choice(genres, item.size, p=genre_p))
    heads.append(np.arange(n))
    relations.append(np.full(n, 1))
    tails.append(genres + rng.choice(people, n, p=person_p))
    cast = rng.integers(2, 5, n)
    item = np.repeat(np.arange(n), cast)
    heads.append(item)
    relations.append(np.full(item.size, 2))
    tails.append(genres + rng.choice(people, item.size, p=person_p))
    head, relation, tail = (np.concatenate(x) for x in (heads, relations, tails))
    _, keep = np.unique(np.stack([head, relation, tail], 1), axis=0, return_index=True)
    keep.sort()
    entity_ids = pa.concat_arrays([_genre_ids(genres), _ids("p", people)])
    return pa.table(
        {
            "head": item_ids.take(pa.array(head[keep])),
            "relation": pa.array(
                np.array(["has_genre", "directed_by", "starring"])[relation[keep]].astype(object)
            ),
            "tail": entity_ids.take(pa.array(tail[keep])),
            "head_type": pa.array(np.full(keep.size, "item").astype(object)),
            "tail_type": pa.array(np.where(relation[keep] == 0, "genre", "person").astype(object)),
        }
    )


def _genre_ids(genres: int) -> pa.Array:
    return pa.array([f"genre:{_genre_name(g).lower()}" for g in range(genres)])


def _genre_name(g: int) -> str:
    base = GENRES[g % len(GENRES)]
    return base if g < len(GENRES) else f"{base} {g // len(GENRES) + 1}"


def _entities(rng: np.random.Generator, genres: int, people: int) -> pa.Table:
    first = np.array(FIRST)[rng.integers(0, len(FIRST), people)]
    last = np.array(LAST)[rng.integers(0, len(LAST), people)]
    names = np.char.add(np.char.add(first, " "), last).astype(object)
    return pa.table(
        {
            "entity_id": pa.concat_arrays([_genre_ids(genres), _ids("p", people)]),
            "type": pa.array(["genre"] * genres + ["person"] * people),
            "name": pa.array([_genre_name(g) for g in range(genres)] + names.tolist()),
        }
    )


class _Writer:
    """Appends tables to ``<path>.parquet`` or ``<path>.csv``."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path.with_suffix(f".{fmt}")
        self.fmt = fmt
        self._writer: pq.ParquetWriter | pa_csv.CSVWriter | None = None

    def __enter__(self) -> _Writer:
        return self

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            if self.fmt == "parquet":
                self._writer = pq.ParquetWriter(self.path, table.schema)
            else:
                self._writer = pa_csv.CSVWriter(self.path, table.schema)
        self._writer.write_table(table)

    def __exit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write (created)")
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--genres", type=int, default=30)
    parser.add_argument("--alpha", type=float, default=0.8, help="popularity exponent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    opts = parser.parse_args()
    try:
        report = generate(
            opts.out,
            interactions=opts.interactions,
            users=opts.users,
            items=opts.items,
            genres=opts.genres,
            alpha=opts.alpha,
            seed=opts.seed,
            fmt=opts.format,
        )
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    print(json.dumps(asdict(report), indent=2))


if __name__ == "__main__":
    main()
