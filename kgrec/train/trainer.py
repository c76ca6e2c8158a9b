"""Training kgrec: the teacher on validation, the GNN distilled from it, the blend, the refit.

:func:`train` runs the whole recipe (each step an option, chosen on validation):

1. **Teacher** (:mod:`kgrec.train.teacher`): closed-form item-item models on the training
   history, each member's hyper-parameters and the ensemble weights chosen on validation.
2. **GNN** (:class:`GNNTrainer`): :class:`~kgrec.nn.model.KGRec` learns to predict what a user
   does next. Each step draws one random temporal cut per user (a prefix of their history as
   input, the next item as target) and minimises a softmax cross-entropy over the whole
   catalogue, plus ``kd_weight`` times the listwise KL to the teacher's scores of the same
   prefix (Ranking Distillation KDD'18, DE-RRD CIKM'20), plus optionally ``cl_weight`` times an
   XSimGCL contrastive loss between two noise-perturbed views of the users. Validation NDCG@20
   drives early stopping (:func:`kgrec.train.loop.fit`).
3. **Blend**: the served score is ``teacher + alpha * z(GNN)`` (a residual hybrid with a
   shallow full-rank path beside the deep one), ``alpha`` chosen on validation;
   ``train.serve`` can pick the GNN alone or the teacher alone instead. A GNN served alone
   and not distilled (``kd_weight: 0``) skips step 1: no dense ``[I, I]`` matrix is built, so
   the catalogue is bounded by the GNN's ``[batch, I]`` logits, not by the teacher.
4. **Refit** (``train.refit``): teacher and GNN are fitted again on training + validation
   interactions with everything chosen above (the GNN for the best number of epochs), so the
   served model knows each user's latest behaviour. Where the blend chose ``alpha = 0`` the
   served model is the teacher and the GNN is dropped unrefitted, unless
   ``train.keep_unused_gnn`` keeps it (to measure it alone).

The result is written atomically to ``out/model.pt`` (:mod:`kgrec.train.checkpoint`); one JSON
line per epoch goes to ``out/train_log.jsonl``; ``out/last.pt`` lets an interrupted run resume.
Under ``torchrun`` the GNN trains data parallel; rank 0 alone tunes the teacher, validates,
writes and reports (:mod:`kgrec.train.distributed`).
"""

from __future__ import annotations

import copy
import json
import os
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from kgrec.allocator import keep_freed_memory
from kgrec.config import Config
from kgrec.data.hetero import GraphArtifact
from kgrec.data.history import History
from kgrec.device import resolve_device
from kgrec.nn.ensemble import Ensemble, standardize
from kgrec.nn.hybrid import Hybrid
from kgrec.nn.model import KGRec
from kgrec.nn.scoring import ScoreFn
from kgrec.progress import Reporter
from kgrec.train import distributed
from kgrec.train.checkpoint import LOG_FILE, MODEL_FILE, save_checkpoint
from kgrec.train.gnn import GNNTrainer, build_model, model_edges, teacher_side
from kgrec.train.loop import MONITOR, FitResult, fit
from kgrec.train.resume import RESUME_FILE, RunState, load_resume_state, run_config
from kgrec.train.teacher import refit, tune_teacher

Validate = Callable[[ScoreFn], Mapping[str, float]]
"""Validation metrics (with ``ndcg@20``) of a score function over the training history."""


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        checkpoint: The served model (``out/model.pt``).
        kind: What it serves: ``hybrid``, ``gnn`` or ``teacher`` (a hybrid whose validation
            chose ``alpha = 0`` serves the teacher).
        best_epoch: GNN epochs (0-based index of the best) chosen on validation; ``-1`` when
            only the teacher is served.
        validation: Validation NDCG@20 of the teacher, the GNN and the hybrid (of those the
            run has).
        alpha: The GNN's weight in the hybrid.
        history: One record per epoch (validation run, then refit).
        seconds: Wall-clock seconds of this call.
        stopped_early: Whether early stopping ended the validation run.
        teacher: The teacher as tuned on the training history (before the refit); without
            members when the run needs none (:func:`needs_teacher`).
        teacher_seconds: Seconds until the teacher was tuned (or loaded).
    """

    checkpoint: Path
    kind: str
    best_epoch: int
    validation: dict[str, float]
    alpha: float
    history: list[dict[str, Any]]
    seconds: float
    stopped_early: bool
    teacher: Ensemble
    teacher_seconds: float

    @property
    def best_metrics(self) -> dict[str, float]:
        """Validation metrics of the served variant (``ndcg@20``)."""
        return {MONITOR: self.validation.get("served", 0.0)}


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated CUDA memory, or the process's peak RSS on CPU, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def train(
    artifact: GraphArtifact,
    x_dict: Mapping[str, Tensor] | None,
    config: Config,
    *,
    validate: Validate,
    out: Path,
    reporter: Reporter | None = None,
    resume: Path | None = None,
    tuned_teacher: Ensemble | None = None,
) -> TrainResult:
    """Run the recipe of the module docstring; see :class:`TrainResult`.

    Args:
        artifact: The graph and its splits.
        x_dict: Text embeddings ``{node_type: [num_nodes, text_dim]}`` (may be empty).
        config: ``model``, ``teacher`` and ``train`` sections are read.
        validate: Validation metrics of a score function over the training history (the
            caller's evaluator: full ranking of the ``val`` split, training items masked).
        out: Output folder (``model.pt``, ``train_log.jsonl``, ``last.pt``).
        reporter: Progress reporting (silent by default).
        resume: A ``last.pt`` of an interrupted run with the same configuration: the tuned
            teacher is reused and the GNN continues after its last finished epoch.
        tuned_teacher: A teacher already tuned on this artifact's training history with
            ``config.teacher`` (:attr:`TrainResult.teacher` of an earlier run; tuning is
            deterministic, so runs that differ only in their seed may share it).

    Under ``torchrun`` every rank calls this; ``validate`` runs on rank 0 only and the other
    ranks return once rank 0 has written the checkpoint.
    """
    clock = time.perf_counter()
    keep_freed_memory()
    cfg = config.train
    device = distributed.setup(resolve_device(cfg.device))
    main = distributed.is_main()
    reporter = reporter if reporter is not None and main else Reporter()
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    ndcg = _monitor(validate)
    saved = distributed.broadcast(
        load_resume_state(resume) if resume is not None and main else None
    )
    plain_config = run_config(config)
    use_teacher = needs_teacher(config)
    log = _Log(out / LOG_FILE, keep=saved is not None) if main else None

    train_history = History.from_artifact(artifact, ("train",))
    side = teacher_side(artifact, x_dict, config)
    if saved is not None:
        teacher = Ensemble.from_state(saved["teacher"])
        reporter.note(
            f"resumed from {resume} ({saved['stage']}, {len(saved['fit']['history'])} epochs done)"
        )
    elif not use_teacher:
        teacher = Ensemble([], [])  # GNN alone, not distilled: no item x item matrix is built
        reporter.note("no teacher: train.serve is gnn and train.kd_weight is 0")
    elif tuned_teacher is not None:
        teacher = tuned_teacher
    else:
        teacher = _on_main(
            lambda: tune_teacher(train_history, side, config.teacher, ndcg, reporter)
        )
    tuned, teacher_seconds = teacher, time.perf_counter() - clock
    validation = {"teacher": teacher.validation.get(MONITOR, 0.0)} if use_teacher else {}
    state = RunState(out / RESUME_FILE, plain_config, teacher) if main else None

    model: KGRec | None = None
    alpha, best_epoch, stopped_early = 0.0, -1, False
    history: list[dict[str, Any]] = []
    if cfg.serve != "teacher":
        model = build_model(artifact, x_dict, config)
        kd = teacher if cfg.kd_weight > 0 else None
        trainer = GNNTrainer(model, train_history, kd, x_dict, cfg, device)
        if trainer.sampled:
            reporter.note(
                f"sampled softmax: each step embeds only its items and {cfg.num_negatives} "
                f"shared negatives (train.item_sampling {cfg.item_sampling})"
            )
        if saved is not None and saved["stage"] == "refit":
            best_epoch, validation = saved["best_epoch"], dict(saved["validation"])
            alpha, history = float(saved["alpha"]), list(saved["validation_history"])
            stopped_early = bool(saved["stopped_early"])
        else:
            start = RunState.restore(saved, trainer)
            best: dict[str, Tensor] = dict(saved["best"]) if saved is not None else {}
            result = fit(
                trainer.train_epoch,
                cfg.epochs,
                validate=lambda: distributed.broadcast(
                    dict(validate(trainer.score_fn())) if main else None
                ),
                eval_every=cfg.eval_every,
                patience=cfg.patience,
                on_best=lambda epoch, metrics: best.update(
                    copy.deepcopy(trainer.model.state_dict())
                ),
                on_epoch=_recorder("validation", log, state, trainer, best, device, {}),
                start=start,
                reporter=reporter,
                label="Training the GNN",
            )
            if best:
                model.load_state_dict(best)
            best_epoch, stopped_early = result.best_epoch, result.stopped_early
            history = list(result.history)
            validation["gnn"] = result.best_metrics.get(MONITOR, 0.0)
            if use_teacher:
                alpha, validation["hybrid"] = distributed.broadcast(
                    tune_alpha(teacher, trainer.score_fn(), train_history, cfg.blend_grid, ndcg)
                    if main
                    else None
                )
    validation["served"] = validation.get(cfg.serve, validation.get("teacher", 0.0))
    if model is not None and cfg.serve == "hybrid" and alpha == 0 and not cfg.keep_unused_gnn:
        model = None  # the blend gave it no weight: serve the teacher, skip the GNN's refit
        reporter.note(
            "validation chose alpha 0: the checkpoint serves the teacher alone and the GNN is "
            "not refitted (train.keep_unused_gnn: true keeps it)"
        )

    if cfg.refit and artifact.split_edge_index["val"].numel():
        full_history = History.from_artifact(artifact, ("train", "val"))
        if use_teacher:
            with reporter.stage("Refitting the teacher on training + validation"):
                fitted = teacher
                teacher = _on_main(lambda: refit(fitted, full_history, side, config.teacher.top_k))
        if model is not None:
            torch.manual_seed(cfg.seed)
            model = build_model(artifact, x_dict, config)
            kd = teacher if cfg.kd_weight > 0 else None
            trainer = GNNTrainer(model, full_history, kd, x_dict, cfg, device)
            resuming_refit = saved is not None and saved["stage"] == "refit"
            start = RunState.restore(saved if resuming_refit else None, trainer)
            chosen = {
                "best_epoch": best_epoch,
                "validation": validation,
                "alpha": alpha,
                "validation_history": history,
                "stopped_early": stopped_early,
            }
            refit_run = fit(
                trainer.train_epoch,
                best_epoch + 1,
                on_epoch=_recorder("refit", log, state, trainer, {}, device, chosen),
                start=start,
                reporter=reporter,
                label="Refitting the GNN on training + validation",
            )
            history = history + refit_run.history

    hybrid = Hybrid(
        teacher if cfg.serve != "gnn" else None,
        model,
        alpha if cfg.serve == "hybrid" else (1.0 if cfg.serve == "gnn" else 0.0),
    )
    gnn_kg = hybrid.kind != "teacher" and config.model.use_kg
    teacher_kg = hybrid.teacher is not None and any(
        c.name == "entity" and w for c, w in zip(teacher.components, teacher.weights, strict=True)
    )
    edge_types = (
        model_edges(artifact, config.model.min_relation_edges) if gnn_kg or teacher_kg else {}
    )
    checkpoint = out / MODEL_FILE
    if main:
        save_checkpoint(
            checkpoint,
            hybrid,
            config=plain_config,
            metrics={
                **{f"val_{k}": v for k, v in validation.items()},
                MONITOR: validation["served"],
            },
            extra={
                "best_epoch": best_epoch,
                "refit": bool(cfg.refit),
                "teacher": teacher.describe(),
            },
            x_dict=x_dict,
            edge_types=list(edge_types),
        )
    distributed.barrier()  # every rank returns once the checkpoint is there
    return TrainResult(
        checkpoint=checkpoint,
        kind=hybrid.kind,
        best_epoch=best_epoch,
        validation=validation,
        alpha=alpha,
        history=history,
        seconds=time.perf_counter() - clock,
        stopped_early=stopped_early,
        teacher=tuned,
        teacher_seconds=teacher_seconds,
    )


def needs_teacher(config: Config) -> bool:
    """Whether a run uses the item-item teacher: to serve it (``train.serve`` hybrid or
    teacher) or to distil from it (``train.kd_weight > 0``). Its dense ``[I, I]`` fits are what
    limit the catalogue size (:data:`kgrec.nn.item_item.MAX_DENSE_ITEMS`), so a GNN-only run
    without distillation skips them."""
    return config.train.serve != "gnn" or config.train.kd_weight > 0


def tune_alpha(
    teacher: Ensemble,
    gnn: ScoreFn,
    history: History,
    grid: tuple[float, ...],
    ndcg: Callable[[ScoreFn], float],
) -> tuple[float, float]:
    """The GNN's blend weight ``alpha`` (from ``grid``) with the best validation NDCG@20."""
    best = (0.0, -1.0)
    for alpha in grid:

        def score(users: Tensor, alpha: float = alpha) -> Tensor:
            blend = teacher.score(history.select(users.cpu()))
            return blend + alpha * standardize(gnn(users)) if alpha else blend

        value = ndcg(score)
        if value > best[1]:
            best = (float(alpha), value)
    return best


RESUME_EVERY = 60.0
"""Seconds of training between two writes of the resume state (besides validations)."""


def _recorder(
    stage: str,
    log: _Log | None,
    state: RunState | None,
    trainer: GNNTrainer,
    best: dict[str, Tensor],
    device: torch.device,
    chosen: dict[str, Any],
) -> Callable[[dict[str, Any], FitResult], None] | None:
    """After each epoch: a line in the log; the resume state after a validation, and at
    least every :data:`RESUME_EVERY` seconds (a kill loses at most that much work). ``None``
    (nothing recorded) on the ranks other than 0, which write nothing."""
    if log is None or state is None:
        return None
    last = [time.perf_counter()]

    def record(values: dict[str, Any], fitted: FitResult) -> None:
        log.write({"stage": stage, **values, "peak_memory_mb": peak_memory_mb(device)})
        if "val" in values or time.perf_counter() - last[0] >= RESUME_EVERY:
            state.save(stage, trainer, fitted, best=best, **chosen)
            last[0] = time.perf_counter()

    return record


def _on_main(make: Callable[[], Ensemble]) -> Ensemble:
    """The teacher ``make()`` returns, made on rank 0 only and shared with every rank."""
    if distributed.world_size() == 1:
        return make()
    made = make() if distributed.is_main() else None
    state = distributed.broadcast(made.state() if made is not None else None)
    return made if made is not None else Ensemble.from_state(state)


def _monitor(validate: Validate) -> Callable[[ScoreFn], float]:
    return lambda score_fn: float(validate(score_fn)[MONITOR])


class _Log:
    """``train_log.jsonl``: rewritten at the start of a run (kept by a resumed one), one line
    per epoch."""

    def __init__(self, path: Path, keep: bool = False) -> None:
        self.path = path
        if keep and path.exists():
            return
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text("", "utf-8")
        os.replace(tmp, path)

    def write(self, record: Mapping[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(record, sort_keys=True, default=float) + "\n")
