"""Uniform negative sampling that avoids each user's training positives (vectorised)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


class NegativeSampler:
    """Draws items uniformly at random, redrawing those the user interacted with in training.

    Positives are kept as sorted keys ``user * num_items + item``; a membership test is one
    ``torch.searchsorted``. Collisions are redrawn up to ``max_tries`` times (a user who has
    seen almost every item may keep a positive after that; with real data this is rare).

    Args:
        edge_index: Training user->item edges ``[2, E]``.
        num_items: Number of items.
        max_tries: Redraw rounds for colliding samples.
    """

    def __init__(self, edge_index: Tensor, num_items: int, max_tries: int = 20) -> None:
        self.edge_index = edge_index.cpu()
        self.num_items = num_items
        self.max_tries = max_tries
        self.keys = torch.unique(self.edge_index[0] * num_items + self.edge_index[1])

    def is_positive(self, users: Tensor, items: Tensor) -> Tensor:
        """Boolean mask, same shape as ``items``: is ``(users, items)`` a training positive?

        ``users`` is ``[B]`` and ``items`` ``[B]`` or ``[B, n]``.
        """
        if items.dim() == users.dim() + 1:
            users = users.unsqueeze(-1)
        key = users * self.num_items + items
        pos = torch.searchsorted(self.keys, key).clamp_max(max(len(self.keys) - 1, 0))
        return self.keys[pos] == key if len(self.keys) else torch.zeros_like(key, dtype=torch.bool)

    def sample(self, users: Tensor, num_negatives: int, generator: torch.Generator) -> Tensor:
        """Negatives ``[B, num_negatives]`` for ``users [B]`` (CPU tensors)."""
        users = users.cpu()
        shape = (users.numel(), num_negatives)
        items = torch.randint(self.num_items, shape, generator=generator)
        for _ in range(self.max_tries):
            hit = self.is_positive(users, items)
            count = int(hit.sum())
            if count == 0:
                break
            items[hit] = torch.randint(self.num_items, (count,), generator=generator)
        return items

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
        """Shuffled training edges in batches of ``[2, batch_size]`` (the last may be smaller)."""
        perm = torch.randperm(self.edge_index.size(1), generator=generator)
        for start in range(0, perm.numel(), batch_size):
            yield self.edge_index[:, perm[start : start + batch_size]]
