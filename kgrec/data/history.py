"""Users' interaction histories in time order: the input of every history-based model.

A :class:`History` keeps each user's items oldest first in CSR layout (``ptr [num_users + 1]``,
``item [E]``) with each interaction's *age*: its position counted back from the user's latest
interaction (``0`` = latest). Recency weights are ``decay ** age``, the exponential decay over a
user's own order used by recency-aware item-item models and by kgrec's history view. Untimed
interactions (timestamp ``< 0``, e.g. Last.fm listening) all have age ``0``: their file order
carries no time, so no decay may read meaning into it.

Three things are built from a history:

- :meth:`History.rows`: weighted indicator rows ``[B, num_items]`` (``X`` of EASE and friends);
- :meth:`History.transitions`: (earlier item -> later item) pairs for item-to-next-item models;
- :meth:`History.cut`: random temporal cuts for training (a prefix as input, what follows as
  targets), so a model learns to predict a user's *next* items from their past, which is the
  task the temporal splits evaluate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from kgrec.data.hetero import GraphArtifact


@dataclass(frozen=True)
class Prefix:
    """Weighted ``(row, item, age)`` triples of ``B`` input rows (a sparse ``[B, num_items]``)."""

    row: Tensor  # [P] row in the batch
    item: Tensor  # [P]
    age: Tensor  # [P] steps back from the row's latest input item (0 = latest)
    num_rows: int

    def dense(self, num_items: int, decay: float = 1.0) -> Tensor:
        """``[B, num_items]`` with ``decay ** age`` at each ``(row, item)`` (summed if repeated)."""
        out = torch.zeros(self.num_rows, num_items)
        out.index_put_((self.row, self.item), decay ** self.age.float(), accumulate=True)
        return out


@dataclass(frozen=True)
class Cut:
    """A batch of temporal cuts: each row's items before its cut, and the next items after it.

    Attributes:
        users: The user of each row ``[B]``.
        prefix: The input items (before the cut).
        target_row, target_item: The target pairs ``[T]`` (the first items after the cut).
    """

    users: Tensor
    prefix: Prefix
    target_row: Tensor
    target_item: Tensor

    def targets(self, num_items: int) -> Tensor:
        """Target indicator ``[B, num_items]`` (float)."""
        out = torch.zeros(self.prefix.num_rows, num_items)
        out[self.target_row, self.target_item] = 1.0
        return out


@dataclass(frozen=True)
class History:
    """Time-ordered user histories (CSR). Build with :meth:`from_edges` or :meth:`from_artifact`.

    Attributes:
        ptr: Row pointers ``[num_users + 1]``.
        item: Items ``[E]``, oldest first within each user.
        age: Position back from the user's latest interaction ``[E]`` (0 for untimed rows).
        timed: Whether each interaction has a timestamp ``[E]`` (bool).
        num_users, num_items: Index space sizes.
    """

    ptr: Tensor
    item: Tensor
    age: Tensor
    timed: Tensor
    num_users: int
    num_items: int

    @classmethod
    def from_edges(
        cls, edge_index: Tensor, time: Tensor | None, num_users: int, num_items: int
    ) -> History:
        """From ``(user, item)`` pairs ``[2, E]`` and timestamps ``[E]`` (``-1``: unknown).

        Ties in time keep the given order (a stable sort).
        """
        users, items = edge_index.long()
        time = torch.full_like(users, -1) if time is None else time.long()
        order = torch.argsort(time, stable=True)
        order = order[torch.argsort(users[order], stable=True)]
        users, items, time = users[order], items[order], time[order]
        count = torch.bincount(users, minlength=num_users)
        ptr = torch.zeros(num_users + 1, dtype=torch.long)
        ptr[1:] = torch.cumsum(count, 0)
        position = torch.arange(users.numel()) - ptr[users]
        timed = time >= 0
        age = torch.where(timed, count[users] - 1 - position, torch.zeros_like(position))
        return cls(ptr, items, age, timed, num_users, num_items)

    @classmethod
    def from_artifact(cls, artifact: GraphArtifact, splits: Sequence[str] = ("train",)) -> History:
        """The interactions of ``splits`` (e.g. ``("train", "val")`` to refit before test)."""
        edges = torch.cat([artifact.split_edge_index[s] for s in splits], dim=1)
        time = torch.cat([artifact.split_edge_time[s] for s in splits])
        return cls.from_edges(edges, time, artifact.num_nodes["user"], artifact.num_nodes["item"])

    # ------------------------------------------------------------------------------ views
    @property
    def num_interactions(self) -> int:
        return int(self.item.numel())

    def degree(self) -> Tensor:
        """Interactions per user ``[num_users]``."""
        return self.ptr[1:] - self.ptr[:-1]

    def user(self) -> Tensor:
        """The user of each interaction ``[E]``."""
        return torch.repeat_interleave(torch.arange(self.num_users), self.degree())

    def edge_index(self) -> Tensor:
        """``(user, item)`` pairs ``[2, E]`` in history order."""
        return torch.stack([self.user(), self.item])

    def select(self, users: Tensor) -> Prefix:
        """The whole histories of ``users [B]`` as one prefix each (row ``b`` = ``users[b]``)."""
        users = users.long().cpu()
        start, count = self.ptr[users], self.ptr[users + 1] - self.ptr[users]
        row = torch.repeat_interleave(torch.arange(users.numel()), count)
        first = torch.cumsum(count, 0) - count
        pos = torch.arange(row.numel()) - first[row] + start[row]
        return Prefix(row, self.item[pos], self.age[pos], int(users.numel()))

    def rows(self, users: Tensor, decay: float = 1.0) -> Tensor:
        """Recency-weighted history rows ``[B, num_items]``: ``decay ** age`` per interaction."""
        return self.select(users).dense(self.num_items, decay)

    def sparse(self, decay: float = 1.0) -> Tensor:
        """The whole weighted matrix ``X`` as a sparse COO tensor ``[num_users, num_items]``."""
        weight = decay ** self.age.float()
        index = torch.stack([self.user(), self.item])
        size = (self.num_users, self.num_items)
        return torch.sparse_coo_tensor(index, weight, size, check_invariants=False).coalesce()

    # ------------------------------------------------------------------------ sequences
    def transitions(self, window: int, decay: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Item-to-later-item pairs within each user's timed sequence.

        For every timed interaction ``p`` (the target) and each of the ``window`` interactions
        ``q`` before it: ``(context row p, item_q, decay ** (p - q - 1), target item_p)``.

        Returns:
            ``row [P]`` (the target interaction's index), ``item [P]`` (context item),
            ``weight [P]`` and ``target [E]`` (the item of every interaction, by index).
        """
        user = self.user()
        rows, items, weights = [], [], []
        for lag in range(1, window + 1):
            dst = torch.arange(lag, self.num_interactions)
            src = dst - lag
            same = (user[src] == user[dst]) & self.timed[src] & self.timed[dst]
            rows.append(dst[same])
            items.append(self.item[src[same]])
            weights.append(torch.full((int(same.sum()),), float(decay) ** (lag - 1)))
        if not rows:
            empty = torch.empty(0, dtype=torch.long)
            return empty, empty, torch.empty(0), self.item
        return torch.cat(rows), torch.cat(items), torch.cat(weights), self.item

    def cut(self, users: Tensor, generator: torch.Generator, num_targets: int = 1) -> Cut:
        """One random temporal cut per user (users need at least 2 interactions).

        A user with ``n`` interactions is cut after ``c ~ U{1, ..., n - 1}`` of them: the first
        ``c`` are the prefix (ages counted back from the ``c``-th), the next ``num_targets`` the
        targets. Untimed histories get a random split of the same sizes instead (their order
        means nothing).
        """
        users = users.long().cpu()
        n = self.ptr[users + 1] - self.ptr[users]
        users, n = users[n >= 2], n[n >= 2]
        batch = int(users.numel())
        c = 1 + (torch.rand(batch, generator=generator) * (n - 1).float()).long().clamp(max=n - 2)
        start = self.ptr[users]
        # shuffle untimed users' rows so that the "prefix" is a random subset
        row = torch.repeat_interleave(torch.arange(batch), n)
        first = torch.cumsum(n, 0) - n
        offset = torch.arange(row.numel()) - first[row]
        index = start[row] + offset
        untimed = ~self.timed[index]
        if bool(untimed.any()):
            key = torch.rand(row.numel(), generator=generator)
            key = torch.where(untimed, key, offset.float())
            order = torch.argsort(row.double() * (int(n.max()) + 1) + key.double())
            index = index[order]
        in_prefix = offset < c[row]
        p_row, p_item = row[in_prefix], self.item[index[in_prefix]]
        p_age = (c[row] - 1 - offset)[in_prefix]
        p_age = torch.where(self.timed[index[in_prefix]], p_age, torch.zeros_like(p_age))
        is_target = (offset >= c[row]) & (offset < c[row] + num_targets)
        prefix = Prefix(p_row, p_item, p_age, batch)
        return Cut(users, prefix, row[is_target], self.item[index[is_target]])
