"""On-disk embedding cache, so a re-run only embeds texts it has not seen.

A vector is keyed by the encoder's ``model_id`` (for :class:`~kgrec.text.encoder.TextEncoder`
that names the model, the pooling and ``max_length``) and the SHA-256 of the text. Each
``model_id`` has one file, ``<cache_dir>/<slug>-<hash>.pt``::

    {"model_id": str, "keys": uint8 Tensor[n, 32] (SHA-256 digests),
     "vectors": float32 Tensor[n, dim]}

Plain tensors, so it is read with ``torch.load(weights_only=True)``; written atomically (temp
file + ``os.replace``). An unreadable or mismatched file counts as empty and is rewritten.
Two processes filling the same cache at once do not corrupt it, but one's additions may be
lost (they are recomputed next time).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from kgrec.files import load_torch, save_torch
from kgrec.text.encoder import Encoder, Progress


@dataclass(frozen=True)
class CacheStats:
    """Distinct texts found in the cache (``hits``) and embedded now (``misses``)."""

    hits: int
    misses: int

    @property
    def reused(self) -> int:
        """Same as ``hits`` (the wording of ``kgrec embed``'s report)."""
        return self.hits

    @property
    def computed(self) -> int:
        """Same as ``misses``."""
        return self.misses


def text_key(text: str) -> bytes:
    """SHA-256 digest (32 bytes) of the UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """The vectors of every model id under one folder; safe to share across datasets."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def file(self, model_id: str) -> Path:
        """The cache file of ``model_id``."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_id).strip("_")[:80]
        return self.path / f"{slug}-{hashlib.sha256(model_id.encode()).hexdigest()[:8]}.pt"

    def load(self, model_id: str) -> tuple[dict[bytes, int], Tensor]:
        """``({key: row}, vectors [n, dim])`` of ``model_id``; empty when nothing is cached."""
        empty: tuple[dict[bytes, int], Tensor] = ({}, torch.empty(0, 0))
        path = self.file(model_id)
        if not path.exists():
            return empty
        try:
            payload = load_torch(path, "kgrec embed", map_location="cpu")  # checksum verified
            keys, vectors = payload["keys"], payload["vectors"]
            ok = payload["model_id"] == model_id and keys.size(0) == vectors.size(0)
        except Exception:  # unreadable or damaged (truncated, foreign, old format): start over
            return empty
        if not ok:
            return empty
        return {bytes(k): row for row, k in enumerate(keys.numpy())}, vectors

    def add(self, model_id: str, keys: Sequence[bytes], vectors: Tensor) -> None:
        """Merge ``vectors [len(keys), dim]`` into the file of ``model_id`` (atomic write)."""
        if not keys:
            return
        index, old = self.load(model_id)
        if old.numel() and old.size(1) != vectors.size(1):  # a different model under this id
            index, old = {}, torch.empty(0, vectors.size(1))
        new = [k for k in dict.fromkeys(keys) if k not in index]
        if not new:
            return
        rows = {k: i for i, k in enumerate(keys)}
        all_keys = list(index) + new
        stacked = torch.cat([old.reshape(-1, vectors.size(1)), vectors[[rows[k] for k in new]]])
        payload = {
            "model_id": model_id,
            "keys": torch.frombuffer(bytearray(b"".join(all_keys)), dtype=torch.uint8).view(-1, 32),
            "vectors": stacked.float().contiguous(),
        }
        save_torch(payload, self.file(model_id))


def embed_with_cache(
    encoder: Encoder,
    texts: Sequence[str],
    cache: EmbeddingCache | Path | str | None,
    progress: Progress | None = None,
) -> tuple[Tensor, CacheStats]:
    """Embed ``texts`` into ``[len(texts), dim]``, encoding only distinct texts not yet cached.

    ``cache`` is a folder (or an :class:`EmbeddingCache`); ``None`` disables caching.
    ``progress(n)`` is called for the hits, then per encoded batch (total: distinct texts).
    """
    if cache is not None and not isinstance(cache, EmbeddingCache):
        cache = EmbeddingCache(cache)
    keys = [text_key(t) for t in texts]
    distinct = dict(zip(keys, texts, strict=True))
    index, cached = cache.load(encoder.model_id) if cache is not None else ({}, torch.empty(0))
    missing = [k for k in distinct if k not in index]
    if progress is not None and len(missing) < len(distinct):
        progress(len(distinct) - len(missing))
    fresh = encoder.encode([distinct[k] for k in missing], progress=progress)
    if cache is not None:
        cache.add(encoder.model_id, missing, fresh)
    hit_keys = [k for k in distinct if k in index]
    parts = [cached[[index[k] for k in hit_keys]]] if hit_keys else []
    if missing or not parts:
        parts.append(fresh)
    position = {k: i for i, k in enumerate([*hit_keys, *missing])}
    table = torch.cat(parts)
    return table[[position[k] for k in keys]], CacheStats(hits=len(hit_keys), misses=len(missing))
