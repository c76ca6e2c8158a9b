"""What every recommender exposes to evaluation: a function scoring all items for users."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

ScoreFn = Callable[[Tensor], Tensor]
"""``users [B] (long) -> scores [B, num_items]`` (higher is better): a model's or a
baseline's ranking of every item, what the evaluators and the trainer's validation read."""
