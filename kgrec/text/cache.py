"""Embedding cache keyed by (model id, sha256 of the text), so re-runs skip known texts.

One folder per model id holds ``embeddings.pt``: ``{"keys": [hex digests], "vectors":
Tensor[n, d]}``, written atomically (temp file + ``os.replace``) and read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from kgrec.text.encoder import Encoder


@dataclass(frozen=True)
class CacheStats:
    """How many texts were encoded now and how many came from the cache."""

    computed: int
    reused: int


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors per model id under ``path``; safe to share across datasets and runs."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _file(self, model_id: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_id).strip("_")
        digest = hashlib.sha256(model_id.encode()).hexdigest()[:8]
        return self.path / f"{slug}-{digest}" / "embeddings.pt"

    def get(self, model_id: str) -> dict[str, Tensor]:
        """All cached vectors of ``model_id``, by text key."""
        path = self._file(model_id)
        if not path.exists():
            return {}
        payload = torch.load(path, weights_only=True)
        return dict(zip(payload["keys"], payload["vectors"], strict=True))

    def put(self, model_id: str, vectors: dict[str, Tensor]) -> None:
        """Merge ``vectors`` into the cache of ``model_id`` (atomic write)."""
        merged = self.get(model_id)
        merged.update(vectors)
        path = self._file(model_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(merged)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        stacked = torch.stack([merged[k] for k in keys]) if keys else torch.empty(0)
        torch.save({"keys": keys, "vectors": stacked}, tmp)
        os.replace(tmp, path)


def embed_with_cache(
    encoder: Encoder, texts: Sequence[str], cache: EmbeddingCache | None, progress: bool = False
) -> tuple[Tensor, CacheStats]:
    """Embed ``texts`` (``[len(texts), d]``), encoding only those not cached yet."""
    keys = [text_key(t) for t in texts]
    known = cache.get(encoder.model_id) if cache is not None else {}
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in known}.items())
    fresh: dict[str, Tensor] = {}
    if missing:
        vectors = encoder.encode([t for _, t in missing], progress=progress)
        fresh = {k: v.clone() for (k, _), v in zip(missing, vectors, strict=True)}
        if cache is not None:
            cache.put(encoder.model_id, fresh)
    table = {**known, **fresh}
    out = torch.stack([table[k] for k in keys]) if keys else torch.empty(0, encoder.embedding_dim)
    return out, CacheStats(computed=len(fresh), reused=len(set(keys)) - len(fresh))
