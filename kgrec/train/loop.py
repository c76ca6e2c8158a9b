"""A model-agnostic epoch loop: train an epoch, validate every few epochs, stop early.

RecBole's ``fit -> _train_epoch -> _valid_epoch -> early_stopping`` split, as plain callables:
:func:`fit` is shared by kgrec's trainer and the LightGCN and SASRec baselines (through
:func:`fit_keeping_best`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kgrec.progress import Reporter

MONITOR = "ndcg@20"
"""The validation metric that early stopping and model selection read."""


@dataclass
class EarlyStopping:
    """Stop after ``patience`` validations without a better ``monitor`` value."""

    patience: int
    best: float = -math.inf
    best_epoch: int = -1
    bad: int = 0

    def update(self, epoch: int, value: float) -> bool:
        """Record ``value`` for ``epoch``; whether it is a new best."""
        if value > self.best:
            self.best, self.best_epoch, self.bad = value, epoch, 0
            return True
        self.bad += 1
        return False

    @property
    def stop(self) -> bool:
        return self.bad >= self.patience


@dataclass
class FitResult:
    """What :func:`fit` did: one record per epoch, the best epoch (0-based) and its metrics."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = -1
    best_metrics: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False

    @property
    def epochs_run(self) -> int:
        return len(self.history)


def fit(
    train_epoch: Callable[[int], Mapping[str, float]],
    epochs: int,
    *,
    validate: Callable[[], Mapping[str, float]] | None = None,
    eval_every: int = 1,
    patience: int | None = None,
    on_best: Callable[[int, Mapping[str, float]], None] | None = None,
    on_epoch: Callable[[dict[str, Any], FitResult], None] | None = None,
    start: FitResult | None = None,
    reporter: Reporter | None = None,
    label: str = "Training",
) -> FitResult:
    """Run ``train_epoch(epoch)`` for ``epochs`` epochs (resuming after ``start``'s epochs).

    Every ``eval_every`` epochs (and after the last) ``validate()`` returns metrics; a better
    :data:`MONITOR` value calls ``on_best(epoch, metrics)``, and ``patience`` validations
    without one stop the run. ``on_epoch(record, result)`` runs after every epoch (logging,
    resume state). Without ``validate`` the run is a fixed number of epochs.
    """
    reporter = reporter or Reporter()
    result = start or FitResult()
    stopping = EarlyStopping(patience if patience is not None else math.inf)  # type: ignore[arg-type]
    if result.best_metrics:
        stopping.best = result.best_metrics.get(MONITOR, -math.inf)
        stopping.best_epoch = result.best_epoch
        stopping.bad = _bad_evals(result)
    first = result.epochs_run
    with reporter.stage(label, total=epochs) as advance:
        advance(first)
        for epoch in range(first, epochs):
            clock = time.perf_counter()
            record: dict[str, Any] = {"epoch": epoch, **train_epoch(epoch)}
            due = validate is not None and (
                (epoch + 1) % max(eval_every, 1) == 0 or epoch == epochs - 1
            )
            if due:
                assert validate is not None
                metrics = {k: float(v) for k, v in validate().items()}
                record["val"] = metrics
                if stopping.update(epoch, metrics.get(MONITOR, 0.0)):
                    result.best_epoch, result.best_metrics = epoch, metrics
                    if on_best is not None:
                        on_best(epoch, metrics)
            record["seconds"] = time.perf_counter() - clock
            result.history.append(record)
            if on_epoch is not None:
                on_epoch(record, result)
            advance(1)
            if due and stopping.stop:
                result.stopped_early = True
                reporter.note(
                    f"early stop at epoch {epoch + 1}: best {MONITOR} {stopping.best:.4f} "
                    f"at epoch {stopping.best_epoch + 1}"
                )
                break
    return result


Curve = tuple[tuple[int, float], ...]
"""``(epoch, validation NDCG@20)`` after every validation, epochs 1-based."""


def fit_keeping_best(
    model: Any,
    train_epoch: Callable[[int], Mapping[str, float]],
    epochs: int,
    *,
    validate: Callable[[], Mapping[str, float]] | None,
    eval_every: int,
    patience: int,
    reporter: Reporter | None = None,
    label: str = "Training",
) -> tuple[FitResult, Curve]:
    """:func:`fit` for a ``torch.nn.Module`` ``model`` that ends holding its best state.

    With ``validate`` the state of the best validation is copied when it is reached and loaded
    back at the end (``result.best_epoch`` is its epoch); without it the model keeps its last
    epoch. Returns the fit and its validation curve (empty without ``validate``).
    """
    best_state: dict[str, Any] = {}
    result = fit(
        train_epoch,
        epochs,
        validate=validate,
        eval_every=eval_every,
        patience=patience,
        on_best=lambda epoch, _: best_state.update(copy.deepcopy(model.state_dict())),
        reporter=reporter,
        label=label,
    )
    curve = tuple((r["epoch"] + 1, r["val"][MONITOR]) for r in result.history if "val" in r)
    if best_state:
        model.load_state_dict(best_state)
    else:
        result.best_epoch = result.epochs_run - 1
    return result, curve


def _bad_evals(result: FitResult) -> int:
    """Validations since the best one (to resume early stopping)."""
    return sum(1 for r in result.history if "val" in r and r["epoch"] > result.best_epoch)
