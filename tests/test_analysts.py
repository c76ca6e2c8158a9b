"""An analyst's session on MovieLens 100K, checked against pandas on the raw files.

The graph is built from ../shared/datasets (skipped when absent) into the real embedded
server. Every example in ``kgrec cypher run --help`` runs and returns rows; "top genres per
age band" written naively draws the warning, written with a counted relationship equals
pandas; ``u.age < 18`` finds the 36 users under 18.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from kgrec.build import build_graph
from kgrec.cli import app
from kgrec.cli.graph import cypher_run
from kgrec.config import load_config
from tests.conftest import shared_dataset

pytestmark = [pytest.mark.datasets, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "ml-100k.yaml"
runner = CliRunner()

BANDS = [(18, "under 18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (55, "45-54")]
BAND_CASE = (
    "CASE "
    + " ".join(f"WHEN u.age < {limit} THEN '{name}'" for limit, name in BANDS)
    + " ELSE '55+' END"
)
Q1_NAIVE = (
    "MATCH (u:User)-[:INTERACTED]->(:Item)-[:HAS_GENRE]->(g:Genre) "
    f"WITH {BAND_CASE} AS band, g.name AS genre, count(*) AS interactions "
    "ORDER BY band, interactions DESC, genre "
    "RETURN band, collect(genre)[0..3] AS genres, collect(interactions)[0..3] AS interactions "
    "ORDER BY band"
)
Q1_COUNTED = Q1_NAIVE.replace("[:INTERACTED]", "[r:INTERACTED]").replace("count(*)", "count(r)")


@pytest.fixture(scope="module")
def env(falkordb_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    config = load_config(
        CONFIG,
        {
            "dataset.path": str(shared_dataset("ml-100k")),
            "dataset.kg_path": str(shared_dataset("ml-100k-kg")),
            "artifacts": str(tmp_path_factory.mktemp("ml100k") / "artifacts"),
            "state_dir": str(falkordb_home),
        },
    )
    build_graph(config)
    yield {"KGREC_HOME": str(falkordb_home), "KGREC_CONFIG": str(CONFIG)}


@pytest.fixture(scope="module")
def raw() -> dict[str, pd.DataFrame]:
    folder = shared_dataset("ml-100k")
    ratings = pd.read_csv(folder / "u.data", sep="\t", names=["user", "item", "rating", "ts"])
    users = pd.read_csv(folder / "u.user", sep="|", names=["user", "age", "sex", "job", "zip"])
    genres = pd.read_csv(folder / "u.genre", sep="|", names=["genre", "index"]).dropna()
    flags = pd.read_csv(folder / "u.item", sep="|", header=None, encoding="latin-1")
    item_genre = (
        flags.set_index(0)
        .iloc[:, -len(genres) :]
        .set_axis(genres["genre"].tolist(), axis=1)
        .rename_axis("item")
        .reset_index()
        .melt(id_vars="item", var_name="genre", value_name="flag")
    )
    return {
        "ratings": ratings,
        "users": users,
        "item_genre": item_genre[item_genre["flag"] == 1].drop(columns="flag"),
    }


def _run(env: dict[str, str], *args: str) -> tuple[str, str]:
    result = runner.invoke(app, ["cypher", "run", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout, result.stderr


def help_examples() -> list[list[str]]:
    """The ``kgrec ...`` example paragraphs of ``kgrec cypher run --help``."""
    doc = (cypher_run.__doc__ or "").split("Examples:", 1)[1]
    paragraphs = [" ".join(p.split()) for p in doc.split("\n\n")]
    return [shlex.split(p)[1:] for p in paragraphs if p.startswith("kgrec ")]


def test_the_help_has_examples() -> None:
    assert len(help_examples()) >= 4


@pytest.mark.parametrize("args", help_examples(), ids=lambda a: a[2])
def test_every_help_example_returns_rows(
    env: dict[str, str], args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # examples name files relative to the checkout
    out, err = _run(env, *args[2:], "-f", "json")
    assert err == ""  # no row-merge warning on a documented example
    assert json.loads(out), f"no rows: kgrec {' '.join(args)}"


def test_users_under_18(env: dict[str, str], raw: dict[str, pd.DataFrame]) -> None:
    out, _ = _run(env, "MATCH (u:User) WHERE u.age < 18 RETURN count(u) AS n", "-f", "json")
    under = int((raw["users"]["age"] < 18).sum())
    assert json.loads(out) == [{"n": under}] and under == 36
    typed, _ = _run(
        env, "MATCH (u:User) WHERE u.age < $age RETURN count(u) AS n", "-p", "age:int=18"
    )
    assert " 36 " in typed


def test_string_ids_stay_strings(env: dict[str, str], raw: dict[str, pd.DataFrame]) -> None:
    query = "MATCH (:User {id: $user})-[r:INTERACTED]->() RETURN count(r) AS n"
    out, _ = _run(env, query, "-p", "user=196", "-f", "json")
    assert json.loads(out) == [{"n": int((raw["ratings"]["user"] == 196).sum())}]


def test_top_genres_per_age_band(env: dict[str, str], raw: dict[str, pd.DataFrame]) -> None:
    frame = raw["ratings"].merge(raw["users"], on="user").merge(raw["item_genre"], on="item")
    edges = [0, *(limit for limit, _ in BANDS), 200]
    names = [name for _, name in BANDS] + ["55+"]
    frame["band"] = pd.cut(frame["age"], edges, right=False, labels=names).astype(str)
    counts = frame.groupby(["band", "genre"]).size().rename("n").reset_index()
    counts = counts.sort_values(["band", "n", "genre"], ascending=[True, False, True])
    top = counts.groupby("band").head(3).groupby("band")
    expected = [
        {"band": band, "genres": g["genre"].tolist(), "interactions": g["n"].tolist()}
        for band, g in top
    ]
    naive_out, naive_err = _run(env, Q1_NAIVE, "-f", "json")
    assert naive_err.startswith("warning: FalkorDB 4.16") and "count(*)" in naive_err
    assert json.loads(naive_out) != expected  # the engine's answer is wrong: hence the warning
    counted_out, counted_err = _run(env, Q1_COUNTED, "-f", "json")
    assert counted_err == ""
    assert json.loads(counted_out) == expected


def test_schema_of_ml100k(env: dict[str, str], raw: dict[str, pd.DataFrame]) -> None:
    result = runner.invoke(app, ["db", "schema", "-f", "json"], env=env)
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    labels = {n["label"]: n for n in schema["labels"]}
    assert labels[":User"]["nodes"] == len(raw["users"])
    users = {p["name"]: p["types"] for p in labels[":User"]["properties"]}
    items = {p["name"]: p["types"] for p in labels[":Item"]["properties"]}
    assert users["age"] == ["integer"] and users["zip_code"] == ["string"]
    assert items["year"] == ["integer"]
    assert 0 < labels[":Actor"]["named_share"] < 0.5  # most Freebase actors have no name
    interacted = next(r for r in schema["relationships"] if r["type"] == "INTERACTED")
    assert interacted["relationships"] == len(raw["ratings"])
