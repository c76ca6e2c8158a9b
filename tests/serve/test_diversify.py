"""MMR diversity: λ = 0 keeps the score order, larger λ spreads the list over attributes,
seen items stay out, and ``recommend --diversify`` works end to end on the demo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kgrec.cli import app
from kgrec.errors import KgrecError
from kgrec.serve.bundle import Bundle
from kgrec.serve.diversify import (
    Diversity,
    attribute_similarity,
    embedding_similarity,
    intra_list_diversity,
    item_attributes,
    mmr,
)
from kgrec.serve.export import open_bundle
from kgrec.serve.recommend import Recommender
from tests.conftest import train_demo_model


def test_mmr_zero_is_the_score_order_and_one_avoids_repeats() -> None:
    scores = np.array([0.9, 0.8, 0.85, 0.1, 0.8])
    # items 0, 1, 2 share an attribute; 3 and 4 are unlike everything
    indptr = np.array([0, 1, 2, 3, 4, 5])
    indices = np.array([7, 7, 7, 8, 9])
    similarity = attribute_similarity(indptr, indices)(np.arange(5))
    assert mmr(scores, similarity, 0.0, 5).tolist() == [0, 2, 1, 4, 3]  # ties: lower first
    assert mmr(scores, similarity, 0.5, 3).tolist() == [0, 4, 3]
    assert mmr(scores, similarity, 0.2, 3).tolist() == [0, 4, 2]
    assert mmr(scores, similarity, 0.5, 10).size == 5
    with pytest.raises(KgrecError, match="between 0 and 1"):
        Diversity(1.5, embedding_similarity(np.eye(3)))


def test_similarities_and_intra_list_diversity() -> None:
    vectors = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    sim = embedding_similarity(vectors)(np.arange(4))
    assert sim[0, 1] == pytest.approx(1.0) and sim[0, 2] == 0.0 and sim[0, 3] == 0.0
    indptr = np.array([0, 2, 4, 4])  # item 2 has no attributes
    attrs = attribute_similarity(indptr, np.array([1, 2, 1, 3]))(np.arange(3))
    assert attrs[0, 1] == pytest.approx(0.5) and attrs[2].tolist() == [0.0, 0.0, 1.0]
    ild = intra_list_diversity(np.array([0, 1, 2]), embedding_similarity(vectors))
    assert ild == pytest.approx((0.0 + 1.0 + 1.0) / 3)
    assert intra_list_diversity(np.array([0]), embedding_similarity(vectors)) == 0.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Bundle]:
    """Demo artifacts and a tiny hybrid model (as in test_serve)."""
    model = train_demo_model(tmp_path_factory.mktemp("diversify"), epochs=3)
    return model.artifacts, model.checkpoint, open_bundle(model.checkpoint, model.artifacts)


def test_diversity_spreads_genres_and_never_serves_seen_items(
    demo: tuple[Path, Path, Bundle],
) -> None:
    artifacts, _, bundle = demo
    kg = attribute_similarity(*item_attributes(artifacts, bundle.item_ids))
    plain = Recommender(bundle)
    users = bundle.user_ids[:40]
    base = plain.recommend_many(users, k=10)
    assert [
        [r.item_id for r in x]
        for x in Recommender(bundle, diversity=Diversity(0.0, kg)).recommend_many(users, k=10)
    ] == [[r.item_id for r in x] for x in base]
    spread = Recommender(bundle, diversity=Diversity(0.7, kg))
    lists = spread.recommend_many(users, k=10)
    one = spread.recommend(users[3], k=10)
    assert [r.item_id for r in one] == [r.item_id for r in lists[3]]

    def ild(recs: list) -> float:  # type: ignore[type-arg]
        return intra_list_diversity(np.array([bundle.item_index(r.item_id) for r in recs]), kg)

    assert np.mean([ild(x) for x in lists]) > np.mean([ild(x) for x in base]) + 0.02
    for user, recs in zip(users, lists, strict=True):
        seen = set(bundle.seen(bundle.user_index(user)).tolist())  # type: ignore[arg-type]
        assert len(recs) == 10 and not seen & {bundle.item_index(r.item_id) for r in recs}
        assert [r.rank for r in recs] == list(range(1, 11))
    seeded = spread.recommend(None, k=5, seed_items=[bundle.item_ids[0]])
    assert bundle.item_ids[0] not in {r.item_id for r in seeded} and len(seeded) == 5


def test_cli_diversify(demo: tuple[Path, Path, Bundle]) -> None:
    artifacts, checkpoint, bundle = demo
    runner = CliRunner()
    common = [
        "--artifacts",
        str(artifacts),
        "--checkpoint",
        str(checkpoint),
        "--user",
        bundle.user_ids[0],
    ]
    out = {}
    for lam, by in (("0", "kg"), ("0.6", "kg"), ("0.6", "embedding"), ("0.6", "genre")):
        result = runner.invoke(
            app,
            [
                "recommend",
                *common,
                "-k",
                "10",
                "--diversify",
                lam,
                "--diversify-by",
                by,
                "-f",
                "json",
            ],
        )
        assert result.exit_code == 0, result.output
        out[(lam, by)] = [r["item_id"] for r in json.loads(result.output)["recommendations"]]
    plain = runner.invoke(app, ["recommend", *common, "-k", "10", "-f", "json"])
    assert [r["item_id"] for r in json.loads(plain.output)["recommendations"]] == out[("0", "kg")]
    assert out[("0.6", "kg")] != out[("0", "kg")] and len(set(out[("0.6", "kg")])) == 10
    genres = pd.read_parquet(artifacts / "tables" / "triples.parquet")
    genres = genres[genres["tail_type"] == "genre"].groupby("head")["tail"].agg(set)
    distinct = {
        key: len(set().union(*(genres.get(i, set()) for i in items))) for key, items in out.items()
    }
    assert distinct[("0.6", "kg")] >= distinct[("0", "kg")]
    assert distinct[("0.6", "genre")] > distinct[("0", "kg")]
    bad = runner.invoke(app, ["recommend", *common, "--diversify", "1.5"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    wrong = runner.invoke(
        app, ["recommend", *common, "--diversify", "0.3", "--diversify-by", "colour"]
    )
    assert wrong.exit_code != 0 and "diversify by kg, embedding or one of: " in wrong.output
