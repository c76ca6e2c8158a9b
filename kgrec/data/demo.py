"""The demo dataset: a small synthetic movie domain with a learnable taste signal.

Each user likes one to three genres and a few directors and actors; which items they
interact with (and, through a fixed taste, which ones they interact with *last*) follows
those tastes, mixed with a mild popularity prior. So a model that reads the knowledge graph
(genres, directors, actors) or the item text can predict a user's held-out items, while
"most popular" is a real but weaker baseline. Everything is invented (titles, names) and
seeded: ``write_demo(folder, seed=0)`` writes the same bytes every time.

Run ``python -m kgrec.data.demo data/demo`` to regenerate the shipped copy.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data.contract import DatasetTables, Table, write_folder


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


GENRES = {
    "action": ("explosive", "a relentless chase"),
    "comedy": ("hilarious", "a string of absurd misunderstandings"),
    "drama": ("moving", "a family torn apart"),
    "horror": ("terrifying", "something lurking in the dark"),
    "sci_fi": ("visionary", "a voyage to a distant planet"),
    "romance": ("tender", "two strangers falling in love"),
    "thriller": ("tense", "a conspiracy that reaches the top"),
    "animation": ("colourful", "a talking animal on a quest"),
    "documentary": ("eye-opening", "the true story of a forgotten invention"),
    "fantasy": ("enchanting", "a kingdom under an ancient curse"),
    "crime": ("gritty", "a heist that goes wrong"),
    "western": ("dusty", "a lone rider seeking justice"),
}
GENRE_NAMES = {
    "sci_fi": "Science Fiction",
    "animation": "Animation",
}
COUNTRIES = ["United States", "France", "Japan", "India", "United Kingdom", "Brazil", "Korea"]
OCCUPATIONS = ["student", "engineer", "artist", "nurse", "teacher", "writer", "lawyer", "retired"]
FIRST = _words(
    "Ada Bruno Clara Diego Elena Farid Greta Hugo Ines Jonas Kaia Luca Mira Nils Olga "
    "Pavel Quinn Rosa Sami Tara Umar Vera Wim Xenia Yusuf Zora"
)
LAST = _words(
    "Albers Berg Castell Dumont Ekberg Ferrante Gallo Haas Ivanova Janssen Kowal "
    "Lindqvist Moreau Novak Okafor Petrov Quist Rossi Sato Tamm Ueda Varga Weiss "
    "Yilmaz Zeller"
)
TITLE_A = _words(
    "Silent Crimson Last Hidden Broken Golden Electric Midnight Savage Paper Iron "
    "Velvet Distant Frozen Wild Secret Burning Hollow Lucky Quiet"
)
TITLE_B = _words(
    "Harbor Empire Garden Signal Frontier Mirror Orchard Voyage Letter Engine Crown "
    "Station Canyon Lantern Tide Archive Citadel Meadow Circuit Promise"
)


def _people(rng: np.random.Generator, n: int, used: set[str]) -> list[str]:
    names: list[str] = []
    while len(names) < n:
        name = f"{FIRST[rng.integers(len(FIRST))]} {LAST[rng.integers(len(LAST))]}"
        if name not in used:
            used.add(name)
            names.append(name)
    return names


def generate_demo(
    seed: int = 0,
    n_users: int = 400,
    n_items: int = 400,
    n_directors: int = 60,
    n_actors: int = 150,
) -> DatasetTables:
    """Generate the demo dataset in contract form (see the module docstring)."""
    rng = np.random.default_rng(seed)
    genres = list(GENRES)
    n_genres = len(genres)
    used: set[str] = set()
    director_names = _people(rng, n_directors, used)
    actor_names = _people(rng, n_actors, used)
    # people specialise: each director works in one or two genres, actors in two or three
    director_genres = [
        rng.choice(n_genres, rng.integers(1, 3), replace=False) for _ in range(n_directors)
    ]
    actor_genres = [
        rng.choice(n_genres, rng.integers(2, 4), replace=False) for _ in range(n_actors)
    ]

    items = []
    item_genres: list[np.ndarray] = []
    item_director = np.empty(n_items, dtype=np.int64)
    item_actors: list[np.ndarray] = []
    titles: set[str] = set()
    edges: list[tuple[str, str, str]] = []
    for i in range(n_items):
        primary = int(rng.integers(n_genres))
        extra = rng.choice(n_genres, rng.integers(0, 3), replace=False)
        g = np.unique(np.concatenate([[primary], extra]))
        directors = [d for d in range(n_directors) if primary in director_genres[d]]
        d = int(rng.choice(directors)) if directors else int(rng.integers(n_directors))
        cast_pool = [a for a in range(n_actors) if np.intersect1d(actor_genres[a], g).size]
        a = rng.choice(cast_pool, min(len(cast_pool), int(rng.integers(2, 6))), replace=False)
        while True:
            title = (
                f"The {TITLE_A[rng.integers(len(TITLE_A))]} {TITLE_B[rng.integers(len(TITLE_B))]}"
            )
            if title in titles:
                title += f" {['II', 'III', 'IV', 'Returns', 'Rising'][rng.integers(5)]}"
            if title not in titles:
                break
        titles.add(title)
        year = int(rng.integers(1970, 2024))
        country = COUNTRIES[int(rng.integers(len(COUNTRIES)))]
        adjective, plot = GENRES[genres[primary]]
        names = [_genre_name(genres[k]) for k in [primary, *(k for k in g if k != primary)]]
        article = "An" if adjective[0] in "aeiou" else "A"
        description = (
            f"{article} {adjective} {names[0].lower()} film about {plot}, directed by "
            f"{director_names[d]} and starring {actor_names[a[0]]}."
        )
        item_id = f"i{i + 1:04d}"
        items.append((item_id, title, year, "|".join(names), description))
        item_genres.append(g)
        item_director[i] = d
        item_actors.append(a)
        edges.extend((item_id, "has_genre", f"genre:{genres[k]}") for k in g)
        edges.append((item_id, "directed_by", f"director:d{d + 1:03d}"))
        edges.extend((item_id, "starring", f"actor:a{k + 1:03d}") for k in a)
        edges.append((item_id, "produced_in", f"country:{_slug(country)}"))

    genre_matrix = np.zeros((n_items, n_genres))
    for i, g in enumerate(item_genres):
        genre_matrix[i, g] = 1.0
    popularity = np.log(rng.pareto(1.5, n_items) + 1.0)

    users, rows = [], []
    start = 1_600_000_000
    for u in range(n_users):
        fav_genres = rng.choice(n_genres, rng.integers(1, 4), replace=False)
        fav_directors = [
            d for d in range(n_directors) if np.intersect1d(director_genres[d], fav_genres).size
        ]
        liked_d = rng.choice(
            fav_directors or [0], min(3, max(len(fav_directors), 1)), replace=False
        )
        liked_a = rng.choice(n_actors, 4, replace=False)
        affinity = (
            2.0 * genre_matrix[:, fav_genres].sum(axis=1)
            + 1.5 * np.isin(item_director, liked_d)
            + 0.7 * np.array([np.intersect1d(x, liked_a).size for x in item_actors])
        )
        logits = 1.6 * affinity + 0.8 * popularity
        n = min(int(rng.integers(20, 81)), n_items // 2)
        gumbel = rng.gumbel(size=n_items)
        chosen = np.argsort(-(logits + gumbel))[:n]
        times = np.sort(rng.integers(start, start + 2 * 365 * 86_400, n))
        order = rng.permutation(n)
        noise = rng.normal(0, 0.7, n)
        ratings = np.clip(np.rint(2.2 + 0.6 * affinity[chosen] + noise), 1, 5)
        user_id = f"u{u + 1:04d}"
        for k in range(n):
            rows.append(
                (user_id, f"i{chosen[order[k]] + 1:04d}", float(ratings[order[k]]), int(times[k]))
            )
        age = int(np.clip(rng.normal(22 + 4 * fav_genres[0], 8), 16, 80))
        occupation = OCCUPATIONS[(int(fav_genres[0]) + int(rng.integers(0, 3))) % len(OCCUPATIONS)]
        users.append((user_id, age, occupation))

    entities = [(f"genre:{g}", "genre", _genre_name(g)) for g in genres]
    entities += [(f"director:d{d + 1:03d}", "director", n) for d, n in enumerate(director_names)]
    entities += [(f"actor:a{a + 1:03d}", "actor", n) for a, n in enumerate(actor_names)]
    entities += [(f"country:{_slug(c)}", "country", c) for c in COUNTRIES]
    triples = pd.DataFrame(edges, columns=["head", "relation", "tail"])
    type_of = {e[0]: e[1] for e in entities}
    triples["head_type"] = "item"
    triples["tail_type"] = triples["tail"].map(type_of)
    used_tails = set(triples["tail"])
    entities = [e for e in entities if e[0] in used_tails]

    folder = Path("data/demo")
    return DatasetTables(
        name="demo",
        interactions=_table(
            "interactions",
            pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]),
            folder,
        ),
        items=_table(
            "items",
            pd.DataFrame(items, columns=["item_id", "title", "year", "genres", "description"]),
            folder,
        ),
        users=_table(
            "users", pd.DataFrame(users, columns=["user_id", "age", "occupation"]), folder
        ),
        triples=_table("triples", triples, folder),
        entities=_table(
            "entities", pd.DataFrame(entities, columns=["entity_id", "type", "name"]), folder
        ),
    )


def _genre_name(slug: str) -> str:
    return GENRE_NAMES.get(slug, slug.replace("_", " ").title())


def _slug(text: str) -> str:
    return text.lower().replace(" ", "_")


def _table(name: str, frame: pd.DataFrame, folder: Path) -> Table:
    return Table(name, frame, folder / f"{name}.csv")


def write_demo(folder: Path | str, seed: int = 0) -> list[Path]:
    """Write the demo dataset as contract CSVs into ``folder``; returns the files."""
    return write_folder(generate_demo(seed), folder)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "data/demo")
    for path in write_demo(target):
        print(path)
