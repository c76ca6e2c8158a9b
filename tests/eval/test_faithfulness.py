"""Deletion faithfulness on the demo: the top path matters more to the model than random ones."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.data.edges import ArtifactEdge
from kgrec.eval.faithfulness import ScoreOracle, deletion_test
from kgrec.serve.export import open_bundle
from kgrec.serve.paths import Explainer
from kgrec.serve.recommend import Recommender
from tests.conftest import TrainedModel

USERS = ("u0001", "u0005", "u0020", "u0050", "u0100", "u0200", "u0300", "u0399")


@pytest.fixture(scope="module")
def oracle(demo_model: TrainedModel) -> ScoreOracle:
    return ScoreOracle(demo_model.checkpoint, demo_model.artifacts)


def test_the_oracle_reproduces_the_served_score_and_sees_deletions(
    demo_model: TrainedModel, oracle: ScoreOracle
) -> None:
    bundle = open_bundle(demo_model.checkpoint, demo_model.artifacts)
    u, i = bundle.user_index("u0001"), bundle.item_index("i0001")
    assert u is not None and i is not None
    served = Recommender(bundle).scores(Recommender(bundle).query("u0001"))[i]
    assert oracle.score(u, i) == pytest.approx(served, rel=1e-4)
    j = int(bundle.seen(u)[0])
    edge = ArtifactEdge(("user", "interacts", "item"), u, j)
    assert oracle.score(u, i, [edge]) != pytest.approx(oracle.score(u, i), rel=1e-6)
    assert oracle.score(u, i) == pytest.approx(served, rel=1e-4)  # the graph itself is intact


def test_top_path_removal_lowers_the_score_more_than_random(
    demo_model: TrainedModel, oracle: ScoreOracle
) -> None:
    bundle = open_bundle(demo_model.checkpoint, demo_model.artifacts)
    explainer = Explainer(bundle)
    recommender = Recommender(bundle)
    results = []
    for user in USERS:
        item = recommender.recommend(user, k=1)[0].item_id
        found = explainer.candidates(user, item)
        top = int(found.ranked()[0])
        randoms = explainer.same_length_paths(found, top, num=5, seed=1)
        assert randoms and all(found.hops[k] == found.hops[top] for k in randoms)
        result = deletion_test(
            oracle,
            found.user,
            found.item,
            explainer.path(found, top).artifact_edges(),
            [explainer.path(found, k).artifact_edges() for k in randoms],
        )
        assert result.base_score == pytest.approx(found.base_score, rel=1e-4)
        results.append(result)
    assert np.mean([r.top_drop for r in results]) > np.mean([r.random_drop for r in results])
    assert sum(r.top_beats_random for r in results) >= 0.75 * len(results)


def test_contributions_are_the_score_drops_of_deleting_the_paths(
    demo_model: TrainedModel, oracle: ScoreOracle
) -> None:
    """A path's contribution estimates what deleting it (its history item) costs the score,
    measured by the checkpoint's torch scorer."""
    bundle = open_bundle(demo_model.checkpoint, demo_model.artifacts)
    explainer = Explainer(bundle)
    rng = np.random.default_rng(0)
    estimated, measured = [], []
    for user in USERS[:4]:
        item = Recommender(bundle).recommend(user, k=1)[0].item_id
        found = explainer.candidates(user, item)
        base = oracle.score(found.user, found.item)
        for k in rng.choice(len(found), size=min(6, len(found)), replace=False).tolist():
            edges = explainer.path(found, k).artifact_edges()
            estimated.append(found.contribution[k])
            measured.append(base - oracle.score(found.user, found.item, edges))
    # first order only: the user's standardisation shifts when an item leaves (demo, 24
    # paths: correlation 0.93, slope 0.86)
    assert np.corrcoef(estimated, measured)[0, 1] > 0.9
    slope = np.polyfit(estimated, measured, 1)[0]
    assert 0.7 < slope < 1.3  # the same scale: contributions are score drops
