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
   ``train.serve`` can pick the GNN alone or the teacher alone instead.
4. **Refit** (``train.refit``): teacher and GNN are fitted again on training + validation
   interactions with everything chosen above (the GNN for the best number of epochs), so the
   served model knows each user's latest behaviour.

The result is written atomically to ``out/model.pt`` (:mod:`kgrec.train.checkpoint`); one JSON
line per epoch goes to ``out/train_log.jsonl``; ``out/last.pt`` lets an interrupted run resume.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from kgrec.config import Config, TrainConfig
from kgrec.data.hetero import GraphArtifact
from kgrec.data.history import History, Prefix
from kgrec.device import resolve_device
from kgrec.errors import KgrecError
from kgrec.nn.ensemble import Ensemble, ScoreFn, standardize
from kgrec.nn.hybrid import Hybrid
from kgrec.nn.loss import info_nce, listwise_kd_loss, perturb, softmax_loss
from kgrec.nn.model import ITEM, USER, EdgeType, ItemEntityGraph, KGRec, prune_edge_types
from kgrec.progress import Reporter
from kgrec.train.checkpoint import save_checkpoint
from kgrec.train.loop import MONITOR, fit
from kgrec.train.teacher import Side, refit, tune_teacher

Validate = Callable[[ScoreFn], Mapping[str, float]]
"""Validation metrics (with ``ndcg@20``) of a score function over the training history."""

BEST_CHECKPOINT = "model.pt"
LOG_FILE = "train_log.jsonl"


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        checkpoint: The served model (``out/model.pt``).
        best_epoch: GNN epochs (0-based index of the best) chosen on validation; ``-1`` when
            only the teacher is served.
        validation: Validation NDCG@20 of the teacher, the GNN and the hybrid.
        alpha: The GNN's weight in the hybrid.
        history: One record per epoch (validation run, then refit).
        seconds: Wall-clock seconds of this call.
        stopped_early: Whether early stopping ended the validation run.
    """

    checkpoint: Path
    best_epoch: int
    validation: dict[str, float]
    alpha: float
    history: list[dict[str, Any]]
    seconds: float
    stopped_early: bool

    @property
    def best_metrics(self) -> dict[str, float]:
        """Validation metrics of the served variant (``ndcg@20``)."""
        return {MONITOR: self.validation.get("served", 0.0)}


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated CUDA memory, or the process's peak RSS on CPU, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ------------------------------------------------------------------------------- the GNN
def model_edges(artifact: GraphArtifact, min_relation_edges: int) -> dict[EdgeType, Tensor]:
    """The knowledge-graph edge types the model may use (rare relations pruned)."""
    edges = prune_edge_types(artifact.kg_edge_index, min_relation_edges)
    return {e: v for e, v in edges.items() if USER not in (e[0], e[2])}


def build_model(
    artifact: GraphArtifact, x_dict: Mapping[str, Tensor] | None, config: Config
) -> KGRec:
    """The configured :class:`KGRec` for ``artifact``, its knowledge graph set."""
    cfg = config.model
    edges = model_edges(artifact, cfg.min_relation_edges) if cfg.use_kg else {}
    text = dict(x_dict or {}) if cfg.use_text else {}
    graph = ItemEntityGraph.build(
        edges, list(edges), artifact.num_nodes[ITEM], cfg.min_entity_degree
    )
    model = KGRec(
        num_nodes=artifact.num_nodes,
        edge_types=list(edges),
        embedding_dim=cfg.embedding_dim,
        text_dim=next(iter(text.values())).size(1) if text else None,
        text_node_types=sorted(text) if text else None,
        use_kg=cfg.use_kg,
        decay=cfg.decay,
        temperature=cfg.temperature,
        num_entities=graph.num_entities,
    )
    model.set_graph(graph)
    return model


class GNNTrainer:
    """One optimisation run of a :class:`KGRec` on one history (see the module docstring).

    Args:
        model: The model (moved to ``device``).
        history: The interactions it learns from.
        teacher: Distillation teacher (``None``: no distillation).
        x_dict: Text features ``{node_type: [num_nodes, text_dim]}`` (may be empty).
        config: ``batch_size`` users per step, ``cuts_per_epoch`` passes over the users per
            epoch, losses and optimiser settings.
        device: Where the model runs (batches are cut on the CPU).
    """

    def __init__(
        self,
        model: KGRec,
        history: History,
        teacher: Ensemble | None,
        x_dict: Mapping[str, Tensor] | None,
        config: TrainConfig,
        device: torch.device,
    ) -> None:
        self.model = model.to(device)
        self.history = history
        self.teacher = teacher
        self.x_dict = {t: v.to(device) for t, v in (x_dict or {}).items()}
        self.config = config
        self.device = device
        self.generator = torch.Generator().manual_seed(config.seed)
        self.optimizer = torch.optim.Adam(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.users = (history.degree() >= 2).nonzero().squeeze(1)
        if self.users.numel() == 0:
            raise KgrecError("no user has two training interactions: nothing to learn from")

    def train_epoch(self, epoch: int = 0) -> dict[str, float]:
        """``cuts_per_epoch`` passes over the users in batches; mean loss terms."""
        self.model.train()
        sums: dict[str, float] = {}
        steps = 0
        cfg = self.config
        for _ in range(cfg.cuts_per_epoch):
            order = self.users[torch.randperm(self.users.numel(), generator=self.generator)]
            for start in range(0, order.numel(), cfg.batch_size):
                terms = self.step(order[start : start + cfg.batch_size])
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + value
                steps += 1
        return {name: value / max(steps, 1) for name, value in sums.items()}

    def step(self, users: Tensor) -> dict[str, float]:
        """One optimisation step on one temporal cut per user; the loss terms."""
        cfg = self.config
        cut = self.history.cut(users, self.generator, cfg.num_targets)
        prefix = cut.prefix
        rows = prefix.dense(self.model.num_items, self.model.decay).to(self.device)
        target = cut.targets(self.model.num_items).to(self.device)
        items_in, items_out = self.model.item_embeddings(self.x_dict)
        user = self.model.user_embedding(rows, items_in)
        logits = user @ F.normalize(items_out, dim=-1).t() / self.model.temperature
        terms = {"rank": softmax_loss(logits, target)}
        if self.teacher is not None and cfg.kd_weight > 0:
            teacher = self.teacher.score(prefix).to(self.device)
            unseen = torch.ones_like(teacher, dtype=torch.bool)
            unseen[prefix.row.to(self.device), prefix.item.to(self.device)] = False
            terms["kd"] = cfg.kd_weight * listwise_kd_loss(
                logits, teacher, cfg.kd_temperature, mask=unseen
            )
        if cfg.cl_weight > 0:
            view_a = self.model.user_embedding(rows, perturb(items_in, cfg.cl_eps))
            view_b = self.model.user_embedding(rows, perturb(items_in, cfg.cl_eps))
            terms["cl"] = cfg.cl_weight * info_nce(view_a, view_b, cfg.cl_temperature)
        loss = torch.stack(list(terms.values())).sum()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}

    @torch.no_grad()
    def score_fn(self, history: History | None = None) -> ScoreFn:
        """``users -> logits [B, I]`` of the current model over ``history`` (default: own)."""
        self.model.eval()
        history = history or self.history
        items_in, items_out = self.model.serving_embeddings(self.x_dict)
        decay = self.model.decay

        def score(users: Tensor) -> Tensor:
            rows = history.rows(users.cpu(), decay).to(items_in.device)
            return (F.normalize(rows @ items_in, dim=-1) @ items_out.t()).cpu()

        return score


# ------------------------------------------------------------------------------ training
def teacher_side(
    artifact: GraphArtifact, x_dict: Mapping[str, Tensor] | None, config: Config
) -> Side:
    """Item-entity edges (the model's relations) and item text for the teacher."""
    edges = model_edges(artifact, config.model.min_relation_edges)
    graph = ItemEntityGraph.build(
        edges, list(edges), artifact.num_nodes[ITEM], config.model.min_entity_degree
    )
    text = (x_dict or {}).get(ITEM)
    return Side(
        item_entity=torch.stack([graph.item, graph.entity]) if graph.item.numel() else None,
        num_entities=graph.num_entities,
        item_text=text.float() if text is not None else None,
    )


def train(
    artifact: GraphArtifact,
    x_dict: Mapping[str, Tensor] | None,
    config: Config,
    *,
    validate: Validate,
    out: Path,
    reporter: Reporter | None = None,
) -> TrainResult:
    """Run the recipe of the module docstring; see :class:`TrainResult`.

    Args:
        artifact: The graph and its splits.
        x_dict: Text embeddings ``{node_type: [num_nodes, text_dim]}`` (may be empty).
        config: ``model``, ``teacher`` and ``train`` sections are read.
        validate: Validation metrics of a score function over the training history (the
            caller's evaluator: full ranking of the ``val`` split, training items masked).
        out: Output folder (``model.pt``, ``train_log.jsonl``).
        reporter: Progress reporting (silent by default).
    """
    clock = time.perf_counter()
    reporter = reporter or Reporter()
    cfg = config.train
    device = resolve_device(cfg.device)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    ndcg = _monitor(validate)

    train_history = History.from_artifact(artifact, ("train",))
    side = teacher_side(artifact, x_dict, config)
    teacher = tune_teacher(train_history, side, config.teacher, ndcg, reporter)
    validation = {"teacher": teacher.validation.get(MONITOR, 0.0)}
    log = _Log(out / LOG_FILE)

    model: KGRec | None = None
    alpha, best_epoch, stopped_early = 0.0, -1, False
    history: list[dict[str, Any]] = []
    if cfg.serve != "teacher":
        model = build_model(artifact, x_dict, config)
        trainer = GNNTrainer(
            model, train_history, teacher if cfg.kd_weight > 0 else None, x_dict, cfg, device
        )
        best: dict[str, Tensor] = {}
        result = fit(
            trainer.train_epoch,
            cfg.epochs,
            validate=lambda: validate(trainer.score_fn()),
            eval_every=cfg.eval_every,
            patience=cfg.patience,
            on_best=lambda epoch, metrics: best.update(copy.deepcopy(model.state_dict())),
            on_epoch=lambda record, _: log.write(
                {"stage": "validation", **record, "peak_memory_mb": peak_memory_mb(device)}
            ),
            reporter=reporter,
            label="Training the GNN",
        )
        model.load_state_dict(best)
        best_epoch, stopped_early, history = result.best_epoch, result.stopped_early, result.history
        validation["gnn"] = result.best_metrics.get(MONITOR, 0.0)
        alpha, validation["hybrid"] = tune_alpha(
            teacher, trainer.score_fn(), train_history, cfg.blend_grid, ndcg
        )
    validation["served"] = validation.get(
        {"teacher": "teacher", "gnn": "gnn", "hybrid": "hybrid"}[cfg.serve], validation["teacher"]
    )

    if cfg.refit and artifact.split_edge_index["val"].numel():
        full_history = History.from_artifact(artifact, ("train", "val"))
        with reporter.stage("Refitting the teacher on training + validation"):
            teacher = refit(teacher, full_history, side, config.teacher.top_k)
        if model is not None:
            torch.manual_seed(cfg.seed)
            model = build_model(artifact, x_dict, config)
            trainer = GNNTrainer(
                model, full_history, teacher if cfg.kd_weight > 0 else None, x_dict, cfg, device
            )
            refit_run = fit(
                trainer.train_epoch,
                best_epoch + 1,
                on_epoch=lambda record, _: log.write({"stage": "refit", **record}),
                reporter=reporter,
                label="Refitting the GNN on training + validation",
            )
            history = history + refit_run.history

    hybrid = Hybrid(
        teacher if cfg.serve != "gnn" else None,
        model,
        alpha if cfg.serve == "hybrid" else (1.0 if cfg.serve == "gnn" else 0.0),
    )
    checkpoint = save_checkpoint(
        out / BEST_CHECKPOINT,
        hybrid,
        config={
            "model": asdict(config.model),
            "teacher": asdict(config.teacher),
            "train": asdict(cfg),
        },
        metrics={**{f"val_{k}": v for k, v in validation.items()}, MONITOR: validation["served"]},
        extra={"best_epoch": best_epoch, "refit": bool(cfg.refit), "teacher": teacher.describe()},
        x_dict=x_dict,
    )
    return TrainResult(
        checkpoint=checkpoint,
        best_epoch=best_epoch,
        validation=validation,
        alpha=alpha,
        history=history,
        seconds=time.perf_counter() - clock,
        stopped_early=stopped_early,
    )


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


def _monitor(validate: Validate) -> Callable[[ScoreFn], float]:
    return lambda score_fn: float(validate(score_fn)[MONITOR])


class _Log:
    """``train_log.jsonl``: rewritten at the start of a run, one line per epoch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text("", "utf-8")
        os.replace(tmp, path)

    def write(self, record: Mapping[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(record, sort_keys=True, default=float) + "\n")


def prefix_of(history: History, users: Tensor) -> Prefix:
    """The whole histories of ``users`` (a convenience for scoring)."""
    return history.select(users)
