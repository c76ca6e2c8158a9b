"""Explanations: the history items that carry the score, each with a path in the graph the
model used, in sentences."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from kgrec.data.edges import INTERACTS, ArtifactEdge
from kgrec.data.hetero import load_artifact
from kgrec.naming import relation_name
from kgrec.serve.bundle import Bundle, load_bundle, serving_dir
from kgrec.serve.export import open_bundle
from kgrec.serve.graph_path import GraphPath
from kgrec.serve.paths import Explainer
from kgrec.serve.recommend import Recommender, UnknownIdError
from kgrec.serve.sentences import relation_phrase
from tests.conftest import REPO, TrainedModel, train_demo_model

USERS = ("u0001", "u0002", "u0010", "u0100", "u0200", "u0399")


@pytest.fixture(scope="module")
def bundle(demo_model: TrainedModel) -> Bundle:
    return open_bundle(demo_model.checkpoint, demo_model.artifacts)


@pytest.fixture(scope="module")
def explainer(bundle: Bundle) -> Explainer:
    return Explainer(bundle)


def explained(
    explainer: Explainer,
    users: tuple[str, ...] = USERS,
    k: int = 3,
    limit: int = 5,
    staff: bool = True,
):
    """``(user, item, paths)`` for each user's top-``k`` recommendations (staff view: every
    contribution, raw paths)."""
    recommender = Recommender(explainer.bundle)
    for user in users:
        for rec in recommender.recommend(user, k=k):
            yield user, rec.item_id, explainer.explain(user, rec.item_id, limit, staff)


def message_passing_edges(model: TrainedModel, bundle: Bundle) -> set[ArtifactEdge]:
    """Every edge the model reads: the users' interactions (every split: the history it
    scores from) and the edges of the KG edge types it used."""
    artifact = load_artifact(model.artifacts)
    used = set(bundle.meta.edge_types)
    history = torch.cat(list(artifact.split_edge_index.values()), dim=1)
    edges = {INTERACTS: history, **artifact.kg_edge_index}
    return {
        ArtifactEdge(edge_type, int(s), int(t))
        for edge_type, index in edges.items()
        if edge_type in used
        for s, t in index.t().tolist()
    }


def test_every_path_lies_in_the_graph_the_model_used(
    demo_model: TrainedModel, bundle: Bundle, explainer: Explainer
) -> None:
    graph = message_passing_edges(demo_model, bundle)
    kinds = set()
    for user, item, paths in explained(explainer):
        assert 0 < len(paths) <= 5
        assert len({p.nodes[1].id for p in paths}) == len(paths)  # one per history item
        for p in paths:
            kinds.add(p.kind)
            assert p.nodes[0].id == user and p.nodes[-1].id == item
            assert 1 <= p.hops <= 3
            assert set(p.artifact_edges()) <= graph, p.sentence
            assert GraphPath.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert "attribute" in kinds  # collaborative paths: see the model without a KG
    with pytest.raises(UnknownIdError, match="unknown item"):
        explainer.explain("u0001", "i9999")
    with pytest.raises(UnknownIdError, match="unknown user"):
        explainer.explain("nobody", "i0001")


def test_paths_come_strongest_first_with_readable_sentences(
    demo_model: TrainedModel, explainer: Explainer
) -> None:
    tables = demo_model.artifacts / "tables"
    entities = pd.read_parquet(tables / "entities.parquet")
    name_of = dict(zip(entities["entity_id"], entities["name"], strict=True))
    names = set(entities["name"]) | set(pd.read_parquet(tables / "items.parquet")["title"])
    attribute = 0
    for user, item, _ in explained(explainer, k=2):
        found = explainer.candidates(user, item)
        ranked = found.contribution[found.ranked()]
        assert (ranked[:-1] >= ranked[1:]).all()
        paths = explainer.explain(user, item, limit=3, staff=True)
        assert paths[0].contribution == pytest.approx(float(ranked[0]))
        assert sum(p.share for p in paths) <= 1 + 1e-9 and all(p.share > 0 for p in paths)
        for p in paths:
            assert "another user" in [n.name for n in p.nodes] or p.kind != "collaborative"
            assert all(n.id == "" for n in p.nodes[1:] if n.type == "user")  # no one named
            quoted = p.sentence.split("*")[1::2]
            assert quoted and all(q in names for q in quoted)
            assert p.nodes[1].name in p.sentence
            if p.kind == "attribute":
                assert name_of[p.nodes[2].id] in p.sentence
                attribute += 1
    assert attribute


def test_contributions_are_the_exact_split_of_the_score(
    bundle: Bundle, explainer: Explainer
) -> None:
    """The score is a per-user constant plus one contribution per history item, and a path
    carries its history item's contribution: what removing that item changes."""
    recommender = Recommender(bundle)
    for user in USERS[:3]:
        rec = recommender.recommend(user, k=1)[0]
        split = explainer.contributions(user, rec.item_id)
        assert split.constant + split.per_item.sum() == pytest.approx(rec.score, abs=1e-6)
        top = explainer.explain(user, rec.item_id, limit=1, staff=True)[0]
        items, ages = bundle.history(bundle.user_index(user))  # type: ignore[arg-type]
        h = top.nodes[1].index
        keep = items != h
        assert bundle.scorer is not None
        without = bundle.scorer.score(items[keep], ages[keep])[top.nodes[-1].index]
        assert rec.score - without == pytest.approx(top.contribution, rel=0.5)


def test_a_model_without_the_knowledge_graph_gets_no_attribute_path(tmp_path: Path) -> None:
    overrides = {"model.use_kg": False, "teacher.components": ["ease"]}
    model = train_demo_model(tmp_path, overrides=overrides)
    bundle = open_bundle(model.checkpoint, model.artifacts)
    assert bundle.meta.edge_types == [INTERACTS]
    explainer = Explainer(bundle)
    assert explainer.graph.item_entities.indices.size == 0
    kinds = {p.kind for _, _, paths in explained(explainer, k=5) for p in paths}
    assert kinds == {"collaborative"}
    # the same user-item pairs do have attribute paths in a model that used the KG
    with_kg = Explainer(open_bundle(*_demo_with_kg(tmp_path)))
    assert "attribute" in {p.kind for _, _, paths in explained(with_kg, k=5) for p in paths}


def _demo_with_kg(tmp_path: Path) -> tuple[Path, Path]:
    model = train_demo_model(tmp_path / "kg", epochs=2)
    return model.checkpoint, model.artifacts


def test_a_pruned_relation_is_never_cited(tmp_path: Path) -> None:
    """19 films share an award: too few edges for training (< 20), so no path may use it."""
    data = tmp_path / "data"
    shutil.copytree(REPO / "data" / "demo", data)
    winners = [f"i{k:04d}" for k in range(1, 20)]
    with (data / "triples.csv").open("a", encoding="utf-8") as out:
        out.writelines(f"{i},won,award:golden,item,award\n" for i in winners)
    with (data / "entities.csv").open("a", encoding="utf-8") as out:
        out.write("award:golden,award,The Golden Reel\n")
    model = train_demo_model(
        tmp_path, dataset=data, epochs=2, overrides={"model.min_relation_edges": 20}
    )
    assert ("item", "won", "award") in load_artifact(model.artifacts).kg_edge_index
    bundle = open_bundle(model.checkpoint, model.artifacts)
    assert not {e for e in bundle.meta.edge_types if "won" in e[1]}
    assert ("item", "has_genre", "genre") in bundle.meta.edge_types
    explainer = Explainer(bundle)
    train = pd.read_parquet(model.artifacts / "tables" / "interactions.parquet")
    fans = sorted(set(train.loc[train["item_id"].isin(winners), "user_id"]))[:10]
    cited = []
    for user in fans:
        mine = set(train.loc[train["user_id"] == user, "item_id"])
        for item in [w for w in winners if w not in mine][:3]:
            for p in explainer.explain(user, item, limit=20, staff=True):
                cited += [e.relation for e in p.edges]
    assert cited and "won" not in cited and "WON" not in cited


def test_explanations_need_only_the_bundle(bundle: Bundle, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle.path, copy)
    alone = Explainer(load_bundle(copy))
    item = Recommender(bundle).recommend("u0001", k=1)[0].item_id
    assert alone.explain("u0001", item) == Explainer(bundle).explain("u0001", item)


def test_the_bundle_records_the_edge_types_the_model_used(demo_model: TrainedModel) -> None:
    stored = torch.load(demo_model.checkpoint, weights_only=True)["edge_types"]
    expected = [INTERACTS, *(tuple(e) for e in stored)]
    assert load_bundle(serving_dir(demo_model.checkpoint)).meta.edge_types == expected
    relations = {relation_name(e[1]) for e in expected}
    assert {"interacts", "has_genre", "directed_by"} <= relations


def test_relation_phrases_read_as_english() -> None:
    assert relation_phrase("has_genre", "Animation", "genre:animation", True) == (
        "an Animation title"
    )
    assert relation_phrase("has_genre", "Drama", "g", True) == "a Drama title"
    assert relation_phrase("directed_by", "Michael Mann", "d1", True) == "directed by Michael Mann"
    unnamed = "award:m.09rpw9q"
    assert relation_phrase("award_nomination", unnamed, unnamed, True) == (
        "with the same award nomination"
    )
    assert relation_phrase("directed_by", "Michael Mann", "d1", False) == (
        "linked to Michael Mann (Michael Mann directed by it)"
    )
