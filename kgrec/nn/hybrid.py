"""The served scorer: ``teacher + alpha * z(GNN)``, a residual hybrid of both paths.

``teacher`` is the item-item ensemble (:class:`~kgrec.nn.ensemble.Ensemble`, a shallow
full-rank path) and the GNN the deep one (:class:`~kgrec.nn.model.KGRec`); either may be
absent (teacher only, or GNN only with ``alpha = 1``). Hybrids that beat tuned EASE keep such
a shallow path beside the deep one (VASP, UltraGCN's item-item constraint).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from kgrec.data.history import History, Prefix
from kgrec.nn.ensemble import Ensemble, standardize
from kgrec.nn.model import KGRec
from kgrec.nn.scoring import ScoreFn


@dataclass
class Hybrid:
    """``score = teacher(x_u) + alpha * z(model(x_u))`` for a user's history ``x_u``.

    Attributes:
        teacher: The item-item ensemble, or ``None`` (GNN only).
        model: The GNN, or ``None`` (teacher only).
        alpha: The GNN's weight (``1`` when it is alone).
    """

    teacher: Ensemble | None
    model: KGRec | None
    alpha: float
    items: tuple[Tensor, Tensor] | None = None
    """Precomputed ``(E_in, norm(E_out) / temperature)`` (from a checkpoint), so scoring needs
    no text features."""

    def __post_init__(self) -> None:
        if self.teacher is None and self.model is None:
            raise ValueError("a hybrid needs a teacher, a model or both")

    @property
    def num_items(self) -> int:
        return self.model.num_items if self.model is not None else self.teacher.num_items  # type: ignore[union-attr]

    @property
    def kind(self) -> str:
        """``hybrid``, ``gnn`` or ``teacher``: what is served."""
        if self.model is None or self.alpha == 0:
            return "teacher"
        return "gnn" if self.teacher is None else "hybrid"

    @torch.no_grad()
    def score(self, prefix: Prefix, x_dict: Mapping[str, Tensor] | None = None) -> Tensor:
        """Scores ``[B, num_items]`` of the prefix rows (text features are needed only by a
        GNN built in this process; a loaded checkpoint carries its item embeddings)."""
        return self._score(prefix, self._serving(x_dict))

    def score_fn(self, history: History, x_dict: Mapping[str, Tensor] | None = None) -> ScoreFn:
        """``users -> scores`` over ``history`` (item embeddings computed once)."""
        cache = self._serving(x_dict)
        return lambda users: self._score(history.select(users.cpu()), cache)

    @torch.no_grad()
    def _score(self, prefix: Prefix, cache: tuple[Tensor, Tensor, float] | None) -> Tensor:
        total = (
            self.teacher.score(prefix)
            if self.teacher is not None
            else torch.zeros(prefix.num_rows, self.num_items)
        )
        if cache is not None:
            items_in, items_out, decay = cache
            rows = prefix.dense(self.num_items, decay)
            logits = F.normalize(rows @ items_in, dim=-1) @ items_out.t()
            total = total + self.alpha * (standardize(logits) if self.teacher else logits)
        return total

    def _serving(self, x_dict: Mapping[str, Tensor] | None) -> tuple[Tensor, Tensor, float] | None:
        if self.model is None or not self.alpha:
            return None
        if x_dict is None and self.items is not None:
            return self.items[0], self.items[1], self.model.decay
        self.model.eval()
        items_in, items_out = self.model.serving_embeddings(x_dict)
        return items_in.cpu(), items_out.cpu(), self.model.decay
