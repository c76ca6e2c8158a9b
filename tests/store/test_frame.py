"""The analysts' Python API: kgrec.query / kgrec.connect return DataFrames from the real
embedded server, with the CLI's parameter rules and the row-merge warning."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import kgrec
from kgrec.build import build_graph
from kgrec.config import Config, load_config
from kgrec.errors import KgrecError, StoreError
from kgrec.store.frame import Graph, RowMergeWarning
from kgrec.store.library import find_query, run_query

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"


@pytest.fixture(scope="module")
def config(falkordb_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Config]:
    folder = tmp_path_factory.mktemp("frame")
    config = load_config(
        None,
        {
            "dataset.path": str(DEMO),
            "artifacts": str(folder / "artifacts"),
            "state_dir": str(falkordb_home),
            "store.graph": "t_frame",
        },
    )
    build_graph(config)
    yield config
    with Graph(config) as graph:
        graph.store.query("MATCH (n) DETACH DELETE n", write=True)


def test_query_returns_the_library_rows_as_a_frame(config: Config) -> None:
    frame = kgrec.query("top_items_per_genre", genre="genre:drama", limit=3, config=config)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["genre", "rank", "item", "title", "interactions"]
    with Graph(config) as graph:
        direct = run_query(graph.store, find_query("top_items_per_genre"),
                           {"genre": "genre:drama", "limit": 3})  # fmt: skip
    assert frame.values.tolist() == direct.rows and len(frame) == 3


def test_parameters_by_keyword_or_dict_with_their_python_types(config: Config) -> None:
    users = pd.read_csv(DEMO / "users.csv")
    with kgrec.connect(config) as graph:
        young = graph.query("MATCH (u:User) WHERE u.age < $age RETURN count(u) AS n", age=18)
        assert young["n"].tolist() == [int((users["age"] < 18).sum())]
        same = graph.query("MATCH (u:User) WHERE u.age < $age RETURN count(u) AS n", {"age": 18})
        assert same.equals(young)
        typed = graph.query("RETURN typeOf($x) AS t, typeOf($y) AS u", x="196", y=196)
        assert typed.values.tolist() == [["String", "Integer"]]
        with pytest.raises(KgrecError, match="needs parameter"):
            graph.query("similar_users")
        with pytest.raises(StoreError, match="--write"):
            graph.query("MATCH (u:User) SET u.x = 1")
        assert graph.schema().labels[0].nodes > 0


def test_a_query_the_engine_miscounts_warns(config: Config) -> None:
    naive = "MATCH (u:User)-[:INTERACTED]->(:Item)-[:HAS_GENRE]->(g:Genre) RETURN count(*) AS n"
    with kgrec.connect(config) as graph:
        with pytest.warns(RowMergeWarning, match=r"count\(\*\) comes out too small"):
            wrong = graph.query(naive)
        right = graph.query(naive.replace("[:INTERACTED]", "[r:INTERACTED]").replace("(*)", "(r)"))
    assert wrong["n"].iloc[0] < right["n"].iloc[0]


def test_config_from_a_path_or_kgrec_config(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"store:\n  graph: t_frame\nstate_dir: {config.state_dir}\n")
    assert len(kgrec.query("MATCH (u:User) RETURN u.id", config=str(path))) == 400
    monkeypatch.setenv("KGREC_CONFIG", str(path))
    assert len(kgrec.query("MATCH (i:Item) RETURN i.id")) == 400
    path.write_text(f"store:\n  graph: t_nothing\nstate_dir: {config.state_dir}\n")
    with pytest.raises(StoreError, match=r"does not exist yet.*t_frame"):
        kgrec.query("MATCH (i:Item) RETURN i.id")
