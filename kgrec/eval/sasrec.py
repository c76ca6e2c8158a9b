"""The SASRec baseline: a sequential model trained on one history, early-stopped on validation.

On per-user temporal splits the order of a user's items carries signal that item-item models
read only as recency; SASRec (:class:`kgrec.nn.sequence.SASRec`) is the sequential baseline
reviewers expect on leave-one-out protocols. One epoch is one pass over the users with at least
two items, ``batch_size`` users a step, each as its latest ``max_len + 1`` items: the first
``max_len`` are the input and every next item a target (full-catalogue cross-entropy). Epochs
run through :func:`kgrec.train.loop.fit`, as for LightGCN: with ``validate`` the best epoch by
validation NDCG@20 is kept and ``patience`` evaluations without a better one stop the run;
without it the run is exactly ``epochs`` long (the refit on training + validation).

SASRec is inductive: it reads a user's history at scoring time, so it scores any history
(training + validation for the test) without per-user parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from kgrec.data.history import History
from kgrec.errors import KgrecError
from kgrec.eval.metrics import ScoreFn
from kgrec.nn.sequence import SASRec, sequences
from kgrec.progress import Reporter
from kgrec.train.loop import MONITOR, fit_keeping_best


@dataclass(frozen=True)
class SASRecScorer:
    """A trained :class:`SASRec`: a user's scores are the next-item logits after their latest
    ``max_len`` items.

    Attributes:
        model: The encoder (eval mode).
        best_epoch: The epoch kept (0-based; the last one of a fixed-length run).
        curve: ``(epoch, validation NDCG@20)`` after every validation, epochs 1-based (empty
            without early stopping).
    """

    model: SASRec
    best_epoch: int
    curve: tuple[tuple[int, float], ...] = ()

    def score_fn(self, history: History) -> ScoreFn:
        """``users [B] -> [B, num_items]`` from each user's latest items in ``history``."""
        model = self.model.eval()
        device = next(model.parameters()).device

        def score(users: Tensor) -> Tensor:
            tokens = sequences(history, users, model.max_len).to(device)
            return model.score(tokens).cpu()

        return score


def fit_sasrec(
    history: History,
    *,
    embedding_dim: int = 64,
    num_layers: int = 2,
    num_heads: int = 1,
    max_len: int = 200,
    dropout: float = 0.2,
    lr: float = 1e-3,
    batch_size: int = 128,
    epochs: int = 200,
    validate: Callable[[ScoreFn], float] | None = None,
    eval_every: int = 10,
    patience: int = 3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    reporter: Reporter | None = None,
) -> SASRecScorer:
    """Train SASRec on ``history`` (see the module docstring).

    Args:
        history: The interactions (training, or training + validation for the refit).
        embedding_dim, num_layers, num_heads, max_len, dropout: :class:`SASRec`'s arguments.
        lr: Adam learning rate (betas 0.9, 0.98, as in SASRec).
        batch_size: Users per step.
        epochs: Upper bound (with ``validate``) or exact number of epochs (without).
        validate: Validation NDCG@20 of a score function over ``history``; ``None``: no early
            stopping, the last epoch is kept.
        eval_every: Epochs between validations.
        patience: Validations without a better NDCG@20 before stopping.
        seed: Seeds initialisation, dropout and the order of the users.
        device: Where the model trains.
    """
    users = (history.degree() >= 2).nonzero().squeeze(1)
    if users.numel() == 0:
        raise KgrecError("SASRec needs a user with two interactions to learn from")
    device = torch.device(device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = SASRec(history.num_items, embedding_dim, num_layers, num_heads, max_len, dropout).to(
        device
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98))
    tokens = sequences(history, users, max_len + 1)  # [U, L + 1]: inputs and next items

    def train_epoch(epoch: int) -> dict[str, float]:
        model.train()
        order = torch.randperm(users.numel(), generator=generator)
        total, steps = 0.0, 0
        for start in range(0, order.numel(), batch_size):
            batch = tokens[order[start : start + batch_size]].to(device)
            loss = model.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, steps = total + float(loss.detach()), steps + 1
        return {"loss": total / max(steps, 1)}

    result, curve = fit_keeping_best(
        model,
        train_epoch,
        epochs,
        validate=(
            (lambda: {MONITOR: validate(SASRecScorer(model, -1).score_fn(history))})
            if validate is not None
            else None
        ),
        eval_every=eval_every,
        patience=patience,
        reporter=reporter,
        label=f"SASRec d={embedding_dim} dropout={dropout:g}",
    )
    return SASRecScorer(model.eval(), result.best_epoch, curve)


def sasrec_options(point: Mapping[str, float]) -> dict[str, Any]:
    """:func:`fit_sasrec`'s keyword arguments of a grid point (``kgrec.eval.baselines.GRIDS``:
    counts as ``int``; keys it does not hold keep their defaults)."""
    return {k: int(v) if k in _COUNTS else float(v) for k, v in point.items()}


_COUNTS = frozenset(
    {"embedding_dim", "num_layers", "num_heads", "max_len", "batch_size", "epochs"}
    | {"eval_every", "patience"}
)
