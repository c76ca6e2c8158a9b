"""Baselines a reviewer accepts: tuned on validation, refitted on training + validation.

The protocol of Ferrari Dacrema et al. (RecSys'19, TOIS'21), the same as kgrec's
:func:`~kgrec.train.trainer.train`: every hyper-parameter point of :data:`GRIDS` is fitted on the
training history and scored on validation (history = training, targets = validation, training
items masked); the point with the best validation NDCG@20 is refitted on training + validation
and evaluated once on test (history = training + validation, both masked). The grids are here,
in one place, and at least as large as kgrec's own teacher grids
(:class:`~kgrec.config.TeacherConfig`).

Every baseline is fitted on a :class:`~kgrec.data.history.History` and scores through
``score_fn(history) -> (users [B] -> [B, num_items])``:

- ``popular``: the history's interaction count of each item, the same list for everyone;
- ``ease``: EASE^R (Steck, WWW'19), ``l2`` tuned, binary history rows;
- ``recency_ease``: the same EASE weights, each history row weighted ``decay ** age`` (the
  user's own order, 0 = latest; :mod:`kgrec.data.history`), ``l2`` and ``decay`` tuned;
- ``itemknn``: cosine item k-NN with shrink (Sarwar et al., WWW'01), ``k`` and ``shrink`` tuned;
  ``recency_itemknn`` adds ``decay``;
- ``rp3beta``: RP3beta (Paudel et al., TiiS'16), ``alpha`` and ``beta`` tuned;
  ``recency_rp3beta`` adds ``decay``;
- ``lightgcn``: PyG's LightGCN with BPR (:mod:`kgrec.eval.lightgcn`), ``embedding_dim`` and
  ``lr`` tuned, each point early-stopped on validation, refitted for its best number of epochs;
- ``sasrec``: SASRec with the full-catalogue cross-entropy (:mod:`kgrec.eval.sasrec`), the
  sequential baseline of leave-one-out protocols, early-stopped and refitted like LightGCN.

Grid points that differ only in ``decay`` share one fit. On a history without timestamps
(every age 0) ``decay`` means nothing and only ``decay = 1`` is tried.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from kgrec.data.hetero import GraphArtifact
from kgrec.data.history import History, Prefix
from kgrec.errors import KgrecError
from kgrec.eval.lightgcn import fit_lightgcn
from kgrec.eval.metrics import ScoreFn, evaluate_ranking
from kgrec.eval.sasrec import fit_sasrec, sasrec_options
from kgrec.nn import item_item
from kgrec.progress import Reporter
from kgrec.train.loop import MONITOR

Params = dict[str, float]
Grid = Mapping[str, Sequence[float]]
Validate = Callable[[ScoreFn], float]
"""Validation NDCG@20 of a score function over the training history."""
Curve = tuple[tuple[int, float], ...]
"""``(epoch, validation NDCG@20)`` after every validation of an early-stopped fit, 1-based."""

_DECAYS: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95, 1.0)  # TeacherConfig.decays
_EASE: dict[str, tuple[float, ...]] = {
    "l2": (50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0)
}
_KNN: dict[str, tuple[float, ...]] = {
    "k": (10, 20, 50, 100, 200, 500),
    "shrink": (0.0, 10.0, 50.0, 100.0, 500.0),
}
_RP3: dict[str, tuple[float, ...]] = {
    "alpha": (0.3, 0.5, 0.7, 0.9, 1.1),
    "beta": (0.0, 0.2, 0.3, 0.4, 0.5, 0.7),
}

GRIDS: dict[str, dict[str, tuple[float, ...]]] = {
    "popular": {},
    "ease": _EASE,  # 8 points (teacher: 6 l2 values)
    "recency_ease": {**_EASE, "decay": _DECAYS},  # 48 (teacher's ease member: 36)
    "itemknn": _KNN,  # 30 (teacher: 9)
    "recency_itemknn": {**_KNN, "decay": _DECAYS},  # 180 scorings of 30 fits (teacher: 54)
    "rp3beta": _RP3,  # 30 (teacher: 9)
    "recency_rp3beta": {**_RP3, "decay": _DECAYS},  # 180 scorings of 30 fits (teacher: 54)
    # 4 early-stopped runs; one-value entries are fixed settings (epochs: the upper bound)
    "lightgcn": {
        "embedding_dim": (64, 256),
        "lr": (1e-3, 5e-3),
        "num_layers": (3,),
        "lambda_reg": (1e-4,),
        "batch_size": (2048,),
        "epochs": (300,),
        "eval_every": (5,),
        "patience": (5,),
    },
    # SASRec's published ML-1M setting (d 64, 2 blocks, 1 head, L 200), dropout tuned
    "sasrec": {
        "dropout": (0.2, 0.5),
        "embedding_dim": (64,),
        "num_layers": (2,),
        "max_len": (200,),
        "lr": (1e-3,),
        "batch_size": (128,),
        "epochs": (300,),
        "eval_every": (10,),
        "patience": (3,),
    },
}
"""The hyper-parameter grid of every baseline, searched on validation NDCG@20."""

DEFAULTS: dict[str, Params] = {
    "popular": {},
    "ease": {"l2": 400.0},
    "recency_ease": {"l2": 400.0, "decay": 0.9},
    "itemknn": {"k": 100, "shrink": 10.0},
    "recency_itemknn": {"k": 100, "shrink": 10.0, "decay": 0.9},
    "rp3beta": {"alpha": 0.7, "beta": 0.3},
    "recency_rp3beta": {"alpha": 0.7, "beta": 0.3, "decay": 0.9},
    "lightgcn": {k: v[0] for k, v in GRIDS["lightgcn"].items()} | {"lr": 5e-3},
    "sasrec": {k: v[0] for k, v in GRIDS["sasrec"].items()},
}
"""The single point :func:`fit_baseline` fits when no parameter is given (no tuning)."""

BASELINES = tuple(GRIDS)
"""Baseline names, in the order reports list them."""


class Baseline(Protocol):
    """A fitted baseline: ``score_fn(history)`` scores users from their ``history`` rows."""

    def score_fn(self, history: History) -> ScoreFn: ...


@dataclass(frozen=True)
class Popular:
    """Interaction counts ``[num_items]`` of the history it was fitted on."""

    counts: Tensor

    @classmethod
    def fit(cls, history: History) -> Popular:
        return cls(torch.bincount(history.item, minlength=history.num_items).float())

    def score_fn(self, history: History) -> ScoreFn:
        counts = self.counts.unsqueeze(0)
        return lambda users: counts.expand(users.numel(), -1)


@dataclass(frozen=True)
class ItemItemScorer:
    """``scores = x_u W``: a dense item-item matrix ``W [I, I]`` (row ``j`` scores the targets
    of history item ``j``) and the input rows' recency ``decay`` (``x_u[j] = decay ** age``)."""

    weight: Tensor
    decay: float = 1.0

    def with_decay(self, decay: float) -> ItemItemScorer:
        return ItemItemScorer(self.weight, float(decay))

    def score(self, prefix: Prefix) -> Tensor:
        """``[B, I]``; the rows stay sparse for large catalogues (``B x I`` work, not ``I^2``)."""
        num_items = self.weight.size(0)
        if num_items <= item_item.DENSE_SCORING_ITEMS:
            return prefix.dense(num_items, self.decay) @ self.weight
        value = self.decay ** prefix.age.float()
        index = torch.stack([prefix.row, prefix.item])
        x = torch.sparse_coo_tensor(
            index, value, (prefix.num_rows, num_items), check_invariants=False
        ).coalesce()
        return torch.sparse.mm(x, self.weight)

    def score_fn(self, history: History) -> ScoreFn:
        return lambda users: self.score(history.select(users.cpu()))


@dataclass(frozen=True)
class Trial:
    """One grid point and its validation NDCG@20.

    ``curve``: for an early-stopped fit (LightGCN, SASRec), ``(epoch, validation NDCG@20)``
    after every validation (epochs 1-based), so a reader can see whether the epoch cap bound;
    else empty.
    """

    params: Params
    validation: float
    curve: Curve = ()


@dataclass
class TunedBaseline:
    """A baseline chosen on validation (see the module docstring).

    Attributes:
        name: The baseline.
        params: The chosen point (LightGCN's and SASRec's ``epochs``: the best number).
        validation: Validation NDCG@20 of the chosen point (fitted on training only).
        trials: Every point tried, in order, with its validation NDCG@20.
        model: The chosen point refitted on ``history``.
        history: What ``model`` was fitted on and scores from: training + validation after a
            refit, else training.
        seconds: Wall-clock seconds of the search and the refit.
    """

    name: str
    params: Params
    validation: float
    trials: list[Trial]
    model: Baseline
    history: History
    seconds: float
    notes: list[str] = field(default_factory=list)

    def score_fn(self) -> ScoreFn:
        """``users [B] -> [B, num_items]`` of the refitted model over its history."""
        return self.model.score_fn(self.history)

    def score(self, users: Tensor) -> Tensor:
        return self.score_fn()(users)


def grid_points(grid: Grid) -> list[Params]:
    """Every combination of ``grid``'s values (the product, in key order)."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def validation_ndcg(artifact: GraphArtifact, batch_size: int = 1024) -> Validate:
    """NDCG@20 on ``artifact``'s validation split (training items masked)."""
    return lambda score_fn: evaluate_ranking(
        score_fn, artifact, "val", ks=(20,), batch_size=batch_size
    ).values[MONITOR]


def tune_baseline(
    name: str,
    artifact: GraphArtifact,
    *,
    grid: Grid | None = None,
    validate: Validate | None = None,
    refit: bool = True,
    seed: int = 0,
    device: torch.device | str = "cpu",
    reporter: Reporter | None = None,
) -> TunedBaseline:
    """Choose ``name``'s hyper-parameters on validation, then refit on training + validation.

    Args:
        name: One of :data:`BASELINES`.
        artifact: The splits.
        grid: Values per parameter (default :data:`GRIDS`); unknown parameters are an error.
        validate: Validation NDCG@20 of a score function over the training history (default:
            :func:`validation_ndcg`).
        refit: Refit the chosen point on training + validation (else keep the training fit).
        seed: Seeds LightGCN and SASRec.
        device: Where LightGCN and SASRec train.
    """
    clock = time.perf_counter()
    reporter = reporter or Reporter()
    name = _known(name)
    grid = dict(GRIDS[name] if grid is None else grid)
    unknown = sorted(set(grid) - set(GRIDS[name]))
    if unknown:
        raise KgrecError(
            f"baseline {name!r}: unknown parameter {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(GRIDS[name]) or 'none'})"
        )
    validate = validate or validation_ndcg(artifact)
    train = History.from_artifact(artifact, ("train",))
    notes = []
    if "decay" in grid and not bool(train.timed.any()):
        grid["decay"] = (1.0,)
        notes.append(f"{name}: the history has no timestamps, so only decay 1 was tried")
    points = grid_points(grid)
    memo: dict[str, Tensor] = {}  # what the grid's fits on the training history share
    trials: list[Trial] = []
    best: tuple[float, Params, Baseline] | None = None
    with reporter.stage(f"Tuning {name}", total=len(points)) as advance:
        for fit_params, decays in _shared_fits(points):
            model, fitted, curve = _fit(
                name, train, fit_params, seed, device, validate, reporter, memo
            )
            for decay in decays:
                if decay is not None:
                    assert isinstance(model, ItemItemScorer)
                    model = model.with_decay(decay)
                params = fitted if decay is None else {**fitted, "decay": decay}
                value = float(validate(model.score_fn(train)))
                trials.append(Trial(params, value, curve))
                if best is None or value > best[0]:
                    best = (value, params, model)
                advance(1)
    assert best is not None, "a grid has at least one point"
    memo.clear()
    value, params, model = best
    history = train
    if refit and artifact.split_edge_index["val"].numel():
        history = History.from_artifact(artifact, ("train", "val"))
        with reporter.stage(f"Refitting {name} on training + validation"):
            model, _, _ = _fit(name, history, params, seed, device, None, reporter)
    return TunedBaseline(
        name, params, value, trials, model, history, time.perf_counter() - clock, notes
    )


def fit_baseline(
    name: str,
    artifact: GraphArtifact,
    split: str = "test",
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    **params: float,
) -> TunedBaseline:
    """Fit ``name`` with ``params`` (missing ones from :data:`DEFAULTS`), no search.

    For ``split="test"`` the model is fitted on training + validation (LightGCN, SASRec: for
    the number of epochs early stopping chose on validation); for ``"val"`` on training alone.
    ``score(users)`` of the result is the evaluator's score function.
    """
    if split not in ("val", "test"):
        raise KgrecError(f"cannot fit a baseline for split {split!r}: expected val or test")
    name = _known(name)
    point = {**DEFAULTS[name], **params}
    grid = {key: (value,) for key, value in point.items()}
    return tune_baseline(name, artifact, grid=grid, refit=split == "test", seed=seed, device=device)


def _known(name: str) -> str:
    """``name`` in lower case, when it is a baseline."""
    name = name.lower()
    if name not in GRIDS:
        raise KgrecError(f"unknown baseline {name!r} (known: {', '.join(BASELINES)})")
    return name


def _shared_fits(points: Sequence[Params]) -> list[tuple[Params, list[float | None]]]:
    """Points grouped by everything but ``decay`` (one fit each), in first-seen order."""
    groups: dict[tuple[tuple[str, float], ...], list[float | None]] = {}
    for point in points:
        key = tuple((k, v) for k, v in point.items() if k != "decay")
        groups.setdefault(key, []).append(point.get("decay"))
    return [(dict(key), decays) for key, decays in groups.items()]


def _fit(
    name: str,
    history: History,
    params: Params,
    seed: int,
    device: torch.device | str,
    validate: Validate | None,
    reporter: Reporter,
    memo: dict[str, Tensor] | None = None,
) -> tuple[Baseline, Params, Curve]:
    """Fit one point on ``history``; the point as fitted (LightGCN, SASRec: with the epochs
    chosen) and its validation curve (their early stopping; empty for closed-form baselines).

    ``memo`` holds what fits on the same ``history`` share (ItemKNN's Gram matrix, ``[I, I]``
    float32), filled by the first fit that needs it.
    """
    family = name.removeprefix("recency_")
    if family == "popular":
        return Popular.fit(history), dict(params), ()
    decay = float(params.get("decay", 1.0))  # the refit keeps the chosen input recency
    if family == "ease":
        return ItemItemScorer(item_item.ease(history, params["l2"]), decay), dict(params), ()
    if family == "itemknn":
        g = None
        if memo is not None:
            g = memo.get("gram")
            if g is None:
                g = memo["gram"] = item_item.gram(history).float()
        weight = item_item.itemknn(history, int(params["k"]), params["shrink"], g)
        return ItemItemScorer(weight, decay), dict(params), ()
    if family == "rp3beta":
        weight = item_item.rp3beta(history, params["alpha"], params["beta"])
        return ItemItemScorer(weight, decay), dict(params), ()
    if family == "sasrec":
        sasrec = fit_sasrec(
            history,
            **sasrec_options(params),
            validate=validate,
            seed=seed,
            device=device,
            reporter=reporter,
        )
        return sasrec, {**params, "epochs": sasrec.best_epoch + 1}, sasrec.curve
    assert family == "lightgcn", family
    scorer = fit_lightgcn(
        history,
        embedding_dim=int(params["embedding_dim"]),
        lr=params["lr"],
        num_layers=int(params["num_layers"]),
        lambda_reg=params["lambda_reg"],
        batch_size=int(params["batch_size"]),
        epochs=int(params["epochs"]),
        validate=validate,
        eval_every=int(params["eval_every"]),
        patience=int(params["patience"]),
        seed=seed,
        device=device,
        reporter=reporter,
    )
    return scorer, {**params, "epochs": scorer.best_epoch + 1}, scorer.curve
