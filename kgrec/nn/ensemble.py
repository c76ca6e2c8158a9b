"""A weighted ensemble of item-item models: ``sum_k w_k z(x_u^{decay_k} W_k)``.

``z`` standardises each user's score row (mean 0, standard deviation 1 over the catalogue) so
the weights compare models whose scores have different scales. kgrec's distillation teacher is
such an ensemble (fitted and weighted on validation by :mod:`kgrec.train.teacher`); the score
of an item is a sum of per-history-item contributions of each member, which is what makes the
teacher's part of a recommendation exactly explainable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from kgrec.data.history import History, Prefix
from kgrec.nn.item_item import ItemItem
from kgrec.nn.scoring import ScoreFn


def standardize(scores: Tensor) -> Tensor:
    """Per-row z-scores of ``scores [B, I]`` (rows with no spread become zeros)."""
    std, mean = torch.std_mean(scores, -1, keepdim=True)
    return (scores - mean).mul_(_inverse_spread(std))


def _inverse_spread(std: Tensor) -> Tensor:
    """``1 / std`` ``[B, 1]``, and 0 where a row has no spread (``std <= 1e-8``)."""
    return torch.where(std > 1e-8, std.clamp(min=1e-8).reciprocal(), torch.zeros_like(std))


@dataclass(frozen=True)
class Component:
    """One fitted member: its name, hyper-parameters and model."""

    name: str
    params: dict[str, float]
    model: ItemItem

    def score(self, prefix: Prefix) -> Tensor:
        return self.model.score(prefix)


@dataclass
class Ensemble:
    """A weighted ensemble of item-item components (see the module docstring).

    Attributes:
        components: The fitted members.
        weights: One weight per member (the first is 1).
        validation: Validation NDCG@20 of each member alone and of the blend (when tuned).
    """

    components: list[Component]
    weights: list[float]
    validation: dict[str, float] = field(default_factory=dict)

    @property
    def num_items(self) -> int:
        return self.components[0].model.num_items

    def score(self, prefix: Prefix) -> Tensor:
        """Blend ``sum_k w_k z(score_k)`` ``[B, I]`` of the prefix rows."""
        total = torch.zeros(prefix.num_rows, self.num_items)
        for component, weight in zip(self.components, self.weights, strict=True):
            if weight:
                scores = component.score(prefix)
                std, mean = torch.std_mean(scores, -1, keepdim=True)
                total.addcmul_(scores.sub_(mean), weight * _inverse_spread(std))
        return total

    def score_fn(self, history: History) -> ScoreFn:
        """``users -> scores`` over ``history`` (for the evaluator)."""
        return lambda users: self.score(history.select(users.cpu()))

    def describe(self) -> dict[str, Any]:
        """Plain summary: members, their hyper-parameters and weights."""
        return {
            c.name: {"weight": w, **c.params}
            for c, w in zip(self.components, self.weights, strict=True)
        }

    def state(self) -> dict[str, Any]:
        """Plain values and tensors for a checkpoint (``weights_only`` loadable)."""
        return {
            "components": [
                {"name": c.name, "params": dict(c.params), "model": c.model.state()}
                for c in self.components
            ],
            "weights": list(self.weights),
            "validation": dict(self.validation),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Ensemble:
        components = [
            Component(c["name"], dict(c["params"]), ItemItem.from_state(c["model"]))
            for c in state["components"]
        ]
        return cls(components, list(state["weights"]), dict(state.get("validation", {})))
