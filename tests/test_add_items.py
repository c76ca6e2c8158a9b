"""``kgrec add-items``: reading, persistence, bad input, serving and the graph database."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from kgrec.add_items import add_items
from kgrec.build import build_graph
from kgrec.cli import app
from kgrec.config import load_config
from kgrec.data.added_items import load_added
from kgrec.data.hetero import load_artifact
from kgrec.errors import KgrecError, ValidationError
from kgrec.eval.metrics import evaluate_ranking
from kgrec.serve.export import open_bundle
from kgrec.serve.recommend import Recommendation, Recommender
from kgrec.serve.record import record_served, served
from kgrec.store.factory import open_store
from kgrec.text.encoder import HashingEncoder
from kgrec.text.features import compute_features, load_features
from kgrec.train.trainer import train
from tests.conftest import small_demo_config, train_demo_model

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo"
runner = CliRunner()

NEW_ITEMS = (REPO / "data" / "new_items" / "demo.csv").read_text(encoding="utf-8")
"""The shipped example: an invented western and a romantic comedy."""


def _tree_digest(folder: Path) -> str:
    """One digest of every file's name and bytes under ``folder`` (empty when absent)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")) if folder.exists() else []:
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


# ---------------------------------------------------------------- demo artifact, fake encoder


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """Demo artifacts (no database) with hashing-encoder text features."""
    config = load_config(
        None,
        {"dataset.path": str(DEMO), "artifacts": str(tmp_path / "art"), "store.enabled": False},
    )
    build_graph(config)
    compute_features(tmp_path / "art", config.features, None, encoder=HashingEncoder(32))
    return tmp_path / "art"


def test_add_items_links_genres_by_name_and_keeps_earlier_additions(
    demo: Path, tmp_path: Path
) -> None:
    config = load_config(None, {"artifacts": str(demo)})
    first = tmp_path / "new.csv"
    first.write_text(NEW_ITEMS, encoding="utf-8")
    added = add_items(first, demo, config.features, encoder=HashingEncoder(32)).added
    assert added.item_ids == ["n0001", "n0002"]
    assert added.text.shape == (2, 32)
    links = {i.item_id: sorted(link.entity_id for link in i.links) for i in added.items}
    assert links == {"n0001": ["genre:western"], "n0002": ["genre:comedy", "genre:romance"]}
    assert "Western" in added.items[0].text and "lone rider" in added.items[0].text
    assert added.items[0].source == f"{first}:2"

    second = tmp_path / "more.csv"
    second.write_text("item_id,title\nn0003,Quiet Days\n", encoding="utf-8")
    triples = tmp_path / "links.csv"
    triples.write_text("head,relation,tail\nn0003,has_genre,genre:drama\n", encoding="utf-8")
    more = add_items(second, demo, config.features, triples, encoder=HashingEncoder(32))
    assert more.added.item_ids == ["n0003"] and more.total == 3  # this call's items, all items
    stored = load_added(demo)
    assert stored is not None and stored.item_ids == ["n0001", "n0002", "n0003"]
    assert [(k.relation, k.entity_type, k.entity_id) for k in stored.items[2].links] == [
        ("has_genre", "genre", "genre:drama")
    ]
    assert stored.text.shape == (3, 32) and stored.text_model == more.added.text_model


@pytest.mark.parametrize(
    ("items", "triples", "expected"),
    [
        ("item_id,title\ni0001,Already there\n", None, "new.csv:2 [item_id]: 'i0001' is already"),
        ("item_id,title\nn1,A\nn1,B\n", None, "new.csv:3 [item_id]: duplicate 'n1'"),
        ("item_id,title\nn1,\n", None, "new.csv:2: 'n1' has no text at all"),
        ("title\nNo id\n", None, "new.csv:1 [item_id]: required column is missing"),
        ("item_id\nn1\n", None, "no text columns"),
        (
            "item_id,title\nn1,A\n",
            "head,relation,tail\nn1,has_genre,genre:nope\n",
            "links.csv:2 [tail]: unknown entity 'genre:nope'",
        ),
        (
            "item_id,title\nn1,A\n",
            "head,relation,tail\ni0001,has_genre,genre:drama\n",
            "links.csv:2 [head]: 'i0001' is not one of the new items",
        ),
    ],
)
def test_bad_new_items_name_file_line_field_and_write_nothing(
    demo: Path, tmp_path: Path, items: str, triples: str | None, expected: str
) -> None:
    config = load_config(None, {"artifacts": str(demo)})
    earlier = tmp_path / "earlier.csv"
    earlier.write_text("item_id,title\nn0009,Earlier\n", encoding="utf-8")
    add_items(earlier, demo, config.features, encoder=HashingEncoder(32))
    before = _tree_digest(demo)
    path = tmp_path / "new.csv"
    path.write_text(items, encoding="utf-8")
    links = None
    if triples is not None:
        links = tmp_path / "links.csv"
        links.write_text(triples, encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        add_items(path, demo, config.features, links, encoder=HashingEncoder(32))
    assert expected in str(caught.value)
    assert _tree_digest(demo) == before


def test_an_item_added_twice_is_refused(demo: Path, tmp_path: Path) -> None:
    config = load_config(None, {"artifacts": str(demo)})
    path = tmp_path / "new.csv"
    path.write_text(NEW_ITEMS, encoding="utf-8")
    add_items(path, demo, config.features, encoder=HashingEncoder(32))
    with pytest.raises(ValidationError, match="'n0001' was added before"):
        add_items(path, demo, config.features, encoder=HashingEncoder(32))


def test_another_text_model_than_the_features_is_refused(demo: Path, tmp_path: Path) -> None:
    config = load_config(None, {"artifacts": str(demo)})
    path = tmp_path / "new.csv"
    path.write_text(NEW_ITEMS, encoding="utf-8")
    with pytest.raises(KgrecError, match="use the same text model"):
        add_items(path, demo, config.features, encoder=HashingEncoder(16))
    assert load_added(demo) is None


# ---------------------------------------------------------------- the real thing, via the CLI


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo artifacts with the real text model's features and a model trained on them."""
    root = tmp_path_factory.mktemp("added")
    art = root / "art"
    config = load_config(
        None, {"dataset.path": str(DEMO), "artifacts": str(art), "store.enabled": False}
    )
    build_graph(config)
    compute_features(art, config.features, root / "cache")
    x_dict, _ = load_features(art)
    # a text model on these features (train_demo_model rebuilds the same data: they are kept)
    model = train_demo_model(
        root,
        epochs=6,
        overrides={"model.use_text": True, "model.embedding_dim": 32},
        x_dict=x_dict,
    )
    assert model.artifacts == art and model.checkpoint == art / "model" / "model.pt"
    return art


def _train_other(art: Path, out: Path) -> Path:
    """Another (smaller, differently seeded) text model on the same artifacts."""
    overrides = {"model.use_text": True, "train.eval_every": 1, "train.seed": 3}
    config = small_demo_config(art, DEMO, epochs=2, overrides=overrides)
    artifact = load_artifact(art)
    x_dict, _ = load_features(art)
    return train(
        artifact,
        x_dict,
        config,
        validate=lambda fn: evaluate_ranking(fn, artifact, "val", ks=(20,)).values,
        out=out,
    ).checkpoint


def test_added_items_are_served_explained_and_survive_a_new_model(
    trained: Path, tmp_path: Path
) -> None:
    path = tmp_path / "new.csv"
    path.write_text(NEW_ITEMS, encoding="utf-8")
    a = ["--artifacts", str(trained)]
    result = runner.invoke(app, ["add-items", str(path), *a, "--no-db", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [r["item_id"] for r in report["added"]] == ["n0001", "n0002"]
    assert len(report["added"][0]["nearest"]) == 3

    bundle = open_bundle(trained / "model" / "model.pt", trained)
    assert bundle.item_ids[-2:] == ["n0001", "n0002"]
    assert bundle.meta.num_added_items == 2
    recommender = Recommender(bundle)
    westerns = [
        i
        for i, t in zip(bundle.item_ids, _genres(trained), strict=False)
        if t == "Western"  # items whose only genre is Western
    ]
    assert len(westerns) >= 3
    ranking = recommender.recommend(None, k=bundle.num_items, seed_items=westerns)
    rank = {r.item_id: r.rank for r in ranking}
    assert rank["n0001"] < rank["n0002"]  # the new western beats the new comedy for westerns
    # and sits in the top 15% of the catalogue: the teacher has no interactions of a new
    # item (its term is neutral, z = 0), so it competes on the GNN's term alone
    assert rank["n0001"] <= len(ranking) * 15 // 100

    explained = runner.invoke(app, ["explain", *a, "--user", "u0001", "--item", "n0001", "--staff"])
    assert explained.exit_code == 0, explained.output
    assert "genre:western" in explained.output

    # a new model: the added items are placed again in its space, without adding them again
    other = _train_other(trained, tmp_path / "other")
    rec = runner.invoke(
        app,
        [
            "recommend",
            *a,
            "--checkpoint",
            str(other),
            "--seed-items",
            "n0001",
            "-f",
            "json",
        ],
    )
    assert rec.exit_code == 0, rec.output
    assert json.loads(rec.output)["recommendations"]


def _genres(art: Path) -> list[str]:
    items = pd.read_parquet(art / "tables" / "items.parquet")
    ids = load_artifact(art).id_map.ids["item"]
    by_id = dict(zip(items["item_id"].astype(str), items["genres"].astype(str), strict=True))
    return [by_id.get(str(i), "") for i in ids]


def test_add_items_cli_reports_bad_input_without_a_traceback(trained: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("item_id,title\ni0001,Clash\n", encoding="utf-8")
    result = runner.invoke(app, ["add-items", str(path), "--artifacts", str(trained), "--no-db"])
    assert result.exit_code != 0
    assert "bad.csv:2 [item_id]" in result.output
    assert "Traceback" not in result.output


def test_a_rebuild_keeps_the_added_items(demo: Path, tmp_path: Path) -> None:
    config = load_config(
        None, {"dataset.path": str(DEMO), "artifacts": str(demo), "store.enabled": False}
    )
    path = tmp_path / "new.csv"
    path.write_text(NEW_ITEMS, encoding="utf-8")
    add_items(path, demo, config.features, encoder=HashingEncoder(32))
    build_graph(config)
    stored = load_added(demo)
    assert stored is not None and stored.item_ids == ["n0001", "n0002"]


# ---------------------------------------------------------------- the real graph database


def test_added_items_enter_the_graph_database_and_survive_a_rebuild(
    falkordb_home: Path, graph_name: str, tmp_path: Path
) -> None:
    config = load_config(
        None,
        {
            "dataset.path": str(DEMO),
            "artifacts": str(tmp_path / "art"),
            "store.graph": graph_name,
            "state_dir": str(falkordb_home),
        },
    )
    build_graph(config)
    compute_features(tmp_path / "art", config.features, None, encoder=HashingEncoder(32))
    path = tmp_path / "new.csv"
    path.write_text(NEW_ITEMS, encoding="utf-8")
    store = open_store(config.store, config.state_path)
    try:
        add_items(path, tmp_path / "art", config.features, encoder=HashingEncoder(32), store=store)
        genres = store.query(
            "MATCH (i:Item {id: $id})-[:HAS_GENRE]->(g) RETURN g.id ORDER BY g.id",
            {"id": "n0002"},
        ).rows
        assert genres == [["genre:comedy"], ["genre:romance"]]
        served_list = [Recommendation("n0001", "The Last Rider", 1.0, 1)]
        assert record_served(store, "u0001", served_list, "m1", None, "req-new") == 1
    finally:
        store.close()

    build_graph(config)  # a rebuild keeps the added items, their links and what was served
    store = open_store(config.store, config.state_path)
    try:
        title = store.query("MATCH (i:Item {id: 'n0001'}) RETURN i.title").rows
        assert title == [["The Last Rider of Dust Creek"]]
        assert [s.request_id for s in served(store, "u0001", "n0001")] == ["req-new"]
    finally:
        store.close()
