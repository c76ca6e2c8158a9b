"""Frozen distillation teachers whose outputs are computed once, before training.

Inside the training loop a teacher does nothing but index lookups and a ``[B, C]`` batched
dot product (the sentence-transformers habit: teacher outputs are precomputed).

- :class:`TextTeacher`: a semantic teacher; a user's profile is the mean text embedding of
  their training items, a score is the cosine between profile and item text.
- :class:`CheckpointTeacher`: a trained (usually larger) kgrec model; its serving embeddings
  are read from the checkpoint.
- :class:`EASETeacher`: EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data",
  WWW'19), a strong closed-form item-item model fitted on the training split in seconds; the
  student learns its ranking while the graph and text let it generalise past it.

Both also precompute each user's top-``k`` unseen items, the "teacher's top-K" candidates of
Ranking Distillation (KDD'18).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


class EmbeddingTeacher:
    """Teacher scores ``<u, i>`` from fixed embeddings.

    Args:
        user_embedding: ``[num_users, d]``.
        item_embedding: ``[num_items, d]``.
        train_edge_index: Training user->item edges ``[2, E]``, masked out of the top-``k``.
        top_k: Unseen items per user to precompute as distillation candidates (``0``: none).
        standardize: Z-score each row of :meth:`score` (puts teachers with different score
            scales, e.g. cosines, on one footing for the softmax temperature).
        batch_size: Users per chunk when precomputing the top-``k``.
    """

    def __init__(
        self,
        user_embedding: Tensor,
        item_embedding: Tensor,
        train_edge_index: Tensor | None = None,
        top_k: int = 0,
        standardize: bool = False,
        batch_size: int = 1024,
    ) -> None:
        self.user_embedding = user_embedding.detach().float()
        self.item_embedding = item_embedding.detach().float()
        self.standardize = standardize
        self.top_k_items = self._top_k(train_edge_index, top_k, batch_size) if top_k else None

    @property
    def num_users(self) -> int:
        return self.user_embedding.size(0)

    @property
    def num_items(self) -> int:
        return self.item_embedding.size(0)

    def to(self, device: torch.device | str) -> EmbeddingTeacher:
        """Move the precomputed tensors (in place) and return ``self``."""
        self.user_embedding = self.user_embedding.to(device)
        self.item_embedding = self.item_embedding.to(device)
        if self.top_k_items is not None:
            self.top_k_items = self.top_k_items.to(device)
        return self

    def _top_k(self, train_edge_index: Tensor | None, k: int, batch_size: int) -> Tensor:
        k = min(k, self.num_items)
        out = []
        for start in range(0, self.num_users, batch_size):
            users = torch.arange(start, min(start + batch_size, self.num_users))
            scores = self.user_embedding[users] @ self.item_embedding.t()
            if train_edge_index is not None:
                ei = train_edge_index.to(scores.device)
                keep = (ei[0] >= start) & (ei[0] < start + len(users))
                scores[ei[0, keep] - start, ei[1, keep]] = float("-inf")
            out.append(scores.topk(k, dim=1).indices)
        return torch.cat(out)

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        """Teacher logits for ``users [B]`` x candidate ``items [B, C]`` -> ``[B, C]``."""
        u = self.user_embedding[users].unsqueeze(1)
        scores = (u * self.item_embedding[items]).sum(-1)
        if self.standardize and scores.size(1) > 1:
            scores = (scores - scores.mean(1, keepdim=True)) / scores.std(
                1, keepdim=True
            ).clamp_min(1e-6)
        return scores

    def candidates(self, users: Tensor) -> Tensor | None:
        """The precomputed top-``k`` unseen items ``[B, k]`` of ``users [B]`` (or ``None``)."""
        return None if self.top_k_items is None else self.top_k_items[users]


class TextTeacher(EmbeddingTeacher):
    """Semantic teacher: cosine between a user's mean item text and each item's text.

    Args:
        item_text: Item text embeddings ``[num_items, text_dim]``.
        train_edge_index: Training user->item edges ``[2, E]`` (build profiles, mask top-``k``).
        num_users: Number of users (users without training items get a zero profile).
        user_text: Optional user text ``[num_users, text_dim]`` added to the profile
            (helps users with few interactions).
        top_k: As in :class:`EmbeddingTeacher`.
        standardize: As in :class:`EmbeddingTeacher` (default ``True``: cosines are small).
    """

    def __init__(
        self,
        item_text: Tensor,
        train_edge_index: Tensor,
        num_users: int,
        user_text: Tensor | None = None,
        top_k: int = 0,
        standardize: bool = True,
    ) -> None:
        items = F.normalize(item_text.detach().float(), dim=-1)
        ei = train_edge_index.to(items.device)
        profile = torch.zeros(num_users, items.size(1), device=items.device)
        profile.index_add_(0, ei[0], items[ei[1]])
        if user_text is not None:
            profile = profile + F.normalize(user_text.detach().float().to(items.device), dim=-1)
        super().__init__(F.normalize(profile, dim=-1), items, train_edge_index, top_k, standardize)


class CheckpointTeacher(EmbeddingTeacher):
    """A trained kgrec checkpoint as teacher (its stored serving embeddings).

    Args:
        path: A checkpoint written by :func:`kgrec.train.checkpoint.save_checkpoint`.
        train_edge_index, top_k, standardize: As in :class:`EmbeddingTeacher`.
    """

    def __init__(
        self,
        path: Path | str,
        train_edge_index: Tensor | None = None,
        top_k: int = 0,
        standardize: bool = False,
    ) -> None:
        from kgrec.train.checkpoint import read_embeddings

        user_embedding, item_embedding = read_embeddings(Path(path))
        super().__init__(user_embedding, item_embedding, train_edge_index, top_k, standardize)


class EASETeacher(EmbeddingTeacher):
    """EASE as a teacher: ``score(u, i) = (X B)[u, i]`` (``X`` the binary training matrix).

    The full score matrix ``[num_users, num_items]`` is computed once; a lookup is a gather.
    Catalogues past :data:`kgrec.eval.baselines.MAX_DENSE_ITEMS` items are refused (EASE's
    dense ``[num_items, num_items]`` inverse).

    Args:
        artifact: The graph artifact (its ``train`` split is the history).
        l2: EASE's L2 penalty.
        top_k, standardize: As in :class:`EmbeddingTeacher` (standardised by default: EASE
            scores have no fixed scale).
    """

    def __init__(self, artifact: Any, l2: float = 500.0, top_k: int = 0, standardize: bool = True):
        from kgrec.eval.baselines import EASE

        ease = EASE(artifact, l2=l2)
        train = artifact.split_edge_index["train"]
        num_users = artifact.num_nodes["user"]
        self.scores = torch.cat(
            [
                ease.score(torch.arange(s, min(s + 1024, num_users)))
                for s in range(0, num_users, 1024)
            ]
        ).float()
        # the "embeddings" are the score rows against an identity item basis
        self.user_embedding = self.scores
        self.item_embedding = torch.empty(self.scores.size(1), 0)
        self.standardize = standardize
        self.top_k_items = None
        if top_k:
            masked = self.scores.clone()
            masked[train[0], train[1]] = float("-inf")
            self.top_k_items = masked.topk(min(top_k, masked.size(1)), dim=1).indices

    def to(self, device: torch.device | str) -> EASETeacher:
        self.scores = self.scores.to(device)
        self.user_embedding = self.scores
        if self.top_k_items is not None:
            self.top_k_items = self.top_k_items.to(device)
        return self

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        scores = self.scores[users.unsqueeze(1), items]
        if self.standardize and scores.size(1) > 1:
            scores = (scores - scores.mean(1, keepdim=True)) / scores.std(
                1, keepdim=True
            ).clamp_min(1e-6)
        return scores
