"""The training loop: BPR + L2 + listwise distillation (+ optional TransE KG loss).

One optimisation step propagates over the whole graph (it is small: ml-100k with its KG runs
a step in ~0.1 s on 2 CPU cores), scores the batch's ``(user, positive, negatives)`` triples
and, with a teacher, each batch user's distillation candidates: the batch positive, the
teacher's top-K unseen items and uniformly sampled items (Ranking Distillation KDD'18).

Validation NDCG@20 drives early stopping (``patience`` evaluations without improvement). The
best model is written atomically to ``out/model.pt``; the full state needed to resume (model,
optimiser, RNG states, history) to ``out/last.pt`` after every epoch; one JSON line per epoch
to ``out/train_log.jsonl``. On CPU, the same seed gives the same loss history.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from kgrec.config import ModelConfig, TrainConfig
from kgrec.data.hetero import GraphArtifact
from kgrec.errors import KgrecError
from kgrec.nn.loss import bpr_loss, kg_loss, l2_regularization, listwise_kd_loss
from kgrec.nn.model import ITEM, USER, EdgeType, KGRec, prune_edge_types
from kgrec.progress import Reporter
from kgrec.train.checkpoint import load_checkpoint, save_checkpoint
from kgrec.train.sampler import NegativeSampler
from kgrec.train.teacher import (
    CheckpointTeacher,
    EASETeacher,
    EmbeddingTeacher,
    TextTeacher,
)

ScoreFn = Callable[[Tensor], Tensor]
"""``users [B] -> scores [B, num_items]``."""
EvalFn = Callable[[ScoreFn], Mapping[str, float]]
"""Validation metrics (must contain ``ndcg@20``) of a score function."""

BEST_CHECKPOINT = "model.pt"
LAST_CHECKPOINT = "last.pt"
LOG_FILE = "train_log.jsonl"
MONITOR = "ndcg@20"
MIN_RELATION_EDGES = 20
"""KG edge types with fewer edges are pruned (a candidate ``model.kg_min_edges`` key)."""


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        best_epoch: Epoch (0-based) of the best validation ``ndcg@20``.
        best_metrics: Validation metrics at that epoch.
        history: One dict per epoch (the lines of ``train_log.jsonl``).
        checkpoint: The best checkpoint (``out/model.pt``).
        seconds: Wall-clock seconds of this call.
        stopped_early: Whether ``patience`` ended the run before ``epochs``.
    """

    best_epoch: int
    best_metrics: dict[str, float]
    history: list[dict[str, Any]]
    checkpoint: Path
    seconds: float
    stopped_early: bool


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise KgrecError("train.device is 'cuda' but no CUDA device is available")
    return torch.device(name)


def build_model(
    artifact: GraphArtifact,
    x_dict: Mapping[str, Tensor] | None,
    model_config: ModelConfig,
    min_relation_edges: int = MIN_RELATION_EDGES,
) -> tuple[KGRec, dict[EdgeType, Tensor]]:
    """The model for ``artifact`` and the (pruned) ``edge_index_dict`` it propagates over."""
    edge_index_dict = prune_edge_types(
        artifact.to_hetero_data().edge_index_dict, min_relation_edges
    )
    text = dict(x_dict or {}) if model_config.use_text else {}
    text_dim = next(iter(text.values())).size(1) if text else None
    model = KGRec(
        num_nodes=artifact.num_nodes,
        edge_types=list(edge_index_dict),
        embedding_dim=model_config.embedding_dim,
        num_layers=model_config.num_layers,
        text_dim=text_dim,
        text_node_types=sorted(text) if text else None,
        use_kg=model_config.use_kg,
        dropout=model_config.dropout,
    )
    return model, edge_index_dict


def build_teacher(
    artifact: GraphArtifact,
    x_dict: Mapping[str, Tensor] | None,
    train_config: TrainConfig,
    reporter: Reporter,
) -> EmbeddingTeacher | None:
    """The configured teacher (``kd_teacher``: ``none``, ``text``, ``ease`` or a checkpoint)."""
    if train_config.kd_weight <= 0 or train_config.kd_teacher in ("none", ""):
        return None
    train_edges = artifact.split_edge_index["train"]
    top_k = train_config.kd_candidates // 2
    if train_config.kd_teacher == "text":
        if not x_dict or ITEM not in x_dict:
            reporter.note("no item text features: training without the text teacher")
            return None
        return TextTeacher(
            x_dict[ITEM], train_edges, artifact.num_nodes[USER], x_dict.get(USER), top_k=top_k
        )
    if train_config.kd_teacher == "ease":
        return EASETeacher(artifact, top_k=top_k)
    return CheckpointTeacher(train_config.kd_teacher, train_edges, top_k=top_k)


def default_eval_fn(artifact: GraphArtifact, device: torch.device) -> EvalFn:
    """Full-ranking validation metrics from :mod:`kgrec.eval.metrics`."""
    try:
        from kgrec.eval.metrics import evaluate_ranking
    except ImportError as exc:  # pragma: no cover - the evaluator ships with kgrec
        raise KgrecError(f"kgrec.eval.metrics is not available ({exc}); pass eval_fn") from exc

    def evaluate(score_fn: ScoreFn) -> Mapping[str, float]:
        return evaluate_ranking(score_fn, artifact, split="val", device=str(device)).values

    return evaluate


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated CUDA memory, or the process's peak RSS on CPU, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class _KGTriples:
    """Forward KG edges in the model's flat node space, for the TransE loss."""

    def __init__(self, model: KGRec, edge_index_dict: Mapping[EdgeType, Tensor]) -> None:
        heads, tails, rels, tail_lo, tail_n = [], [], [], [], []
        for rel, (src, name, dst) in enumerate(model.kg_edge_types):
            if name.startswith("rev_") or (src, name, dst) not in edge_index_dict:
                continue
            ei = edge_index_dict[(src, name, dst)]
            heads.append(ei[0] + model.offsets[src])
            tails.append(ei[1] + model.offsets[dst])
            rels.append(torch.full_like(ei[0], rel))
            tail_lo.append(torch.full_like(ei[0], model.offsets[dst]))
            tail_n.append(torch.full_like(ei[0], model.num_nodes[dst]))
        cat = torch.cat if heads else (lambda _: torch.empty(0, dtype=torch.long))
        self.head, self.tail, self.rel = cat(heads), cat(tails), cat(rels)
        self.tail_lo, self.tail_n = cat(tail_lo), cat(tail_n)

    def __len__(self) -> int:
        return self.head.numel()

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``n`` random triples ``(head, rel, tail, corrupted tail)`` (flat indices)."""
        idx = torch.randint(len(self), (n,), generator=generator)
        noise = torch.rand(n, generator=generator)
        neg = self.tail_lo[idx] + (noise * self.tail_n[idx]).long()
        return self.head[idx], self.rel[idx], self.tail[idx], neg


def _autocast(device: torch.device, enabled: bool) -> AbstractContextManager[Any]:
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def _first_occurrence(users: Tensor) -> tuple[Tensor, Tensor]:
    """Unique users ``[U]`` and, per unique user, the batch row where it first appears."""
    unique, inverse = torch.unique(users, return_inverse=True)
    rows = torch.arange(users.numel(), device=users.device)
    first = torch.full_like(unique, users.numel()).scatter_reduce(0, inverse, rows, reduce="amin")
    return unique, first


def train(
    artifact: GraphArtifact,
    x_dict: Mapping[str, Tensor] | None,
    model_config: ModelConfig,
    train_config: TrainConfig,
    *,
    eval_fn: EvalFn | None = None,
    reporter: Reporter | None = None,
    out: Path,
    resume: Path | None = None,
) -> TrainResult:
    """Train a :class:`KGRec` on ``artifact``'s training split; see the module docstring.

    Args:
        artifact: The graph and its splits.
        x_dict: Text embeddings ``{node_type: [num_nodes, text_dim]}`` (may be empty).
        model_config: The model's shape.
        train_config: Optimisation, distillation, early stopping.
        eval_fn: Validation metrics of a score function (default: full-ranking evaluation
            of the ``val`` split via :mod:`kgrec.eval.metrics`).
        reporter: Progress reporting (silent by default).
        out: Output folder (checkpoints and the JSONL log).
        resume: ``out/last.pt`` (or its folder) of an interrupted run with the same config.
    """
    clock = time.perf_counter()
    reporter = reporter or Reporter()
    cfg = train_config
    device = resolve_device(cfg.device)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)

    with reporter.stage("Preparing training"):
        model, edge_index_dict = build_model(artifact, x_dict, model_config)
        model.to(device)
        edges = {e: v.to(device) for e, v in edge_index_dict.items()}
        feats = {t: v.to(device) for t, v in (x_dict or {}).items()}
        model_x = feats if model_config.use_text else None
        teacher = build_teacher(artifact, x_dict, cfg, reporter)
        if teacher is not None:
            teacher.to(device)
        sampler = NegativeSampler(artifact.split_edge_index["train"], artifact.num_nodes[ITEM])
        degree = torch.bincount(
            artifact.split_edge_index["train"][0], minlength=artifact.num_nodes[USER]
        ).to(device)
        triples = _KGTriples(model, edge_index_dict) if cfg.kg_weight > 0 else None
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        evaluate = eval_fn or default_eval_fn(artifact, device)
    config = {"model": asdict(model_config), "train": asdict(cfg)}

    history: list[dict[str, Any]] = []
    start_epoch, best_epoch, bad_evals = 0, -1, 0
    best_metrics: dict[str, float] = {}
    if resume is not None:
        state = _load_resume_state(resume, model, optimizer, generator)
        history, start_epoch = state["history"], state["epoch"] + 1
        best_epoch, best_metrics, bad_evals = (
            state["best_epoch"],
            state["best_metrics"],
            state["bad_evals"],
        )
    _rewrite_log(out / LOG_FILE, history)

    stopped_early = False
    num_items = artifact.num_nodes[ITEM]
    with reporter.stage("Training", total=cfg.epochs) as advance:
        advance(start_epoch)
        for epoch in range(start_epoch, cfg.epochs):
            epoch_clock = time.perf_counter()
            model.train()
            sums: dict[str, float] = {"loss": 0.0, "bpr": 0.0, "l2": 0.0, "kd": 0.0, "kg": 0.0}
            steps = 0
            for batch in sampler.batches(cfg.batch_size, generator):
                negatives = sampler.sample(batch[0], cfg.num_negatives, generator)
                kd_random = None
                if teacher is not None:
                    num_random = max(cfg.kd_candidates - cfg.kd_candidates // 2, 1)
                    kd_random = torch.randint(
                        num_items, (batch.size(1), num_random), generator=generator
                    )
                kg_batch = (
                    triples.sample(batch.size(1), generator)
                    if triples is not None and len(triples)
                    else None
                )
                users, pos = batch.to(device)
                with _autocast(device, cfg.amp):
                    emb = model.propagate(edges, model_x)
                    terms = _loss_terms(
                        model, emb.ego, emb.final, users, pos, negatives.to(device), cfg
                    )
                    if teacher is not None and kd_random is not None:
                        terms["kd"] = cfg.kd_weight * _kd_term(
                            emb.final, teacher, users, pos, kd_random.to(device), cfg, degree
                        )
                    if kg_batch is not None:
                        terms["kg"] = cfg.kg_weight * _kg_term(
                            model, emb.ego, [t.to(device) for t in kg_batch]
                        )
                loss = torch.stack([t.float() for t in terms.values()]).sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                terms = {k: v.detach() for k, v in terms.items()}
                optimizer.step()
                sums["loss"] += loss.item()
                for name, value in terms.items():
                    sums[name] += value.item()
                steps += 1

            record: dict[str, Any] = {"epoch": epoch}
            record.update({k: v / max(steps, 1) for k, v in sums.items()})
            is_last = epoch == cfg.epochs - 1
            if (epoch + 1) % max(cfg.eval_every, 1) == 0 or is_last:
                embedding = model.get_embedding(edges, model_x)
                metrics = {k: float(v) for k, v in evaluate(model.score).items()}
                record["val"] = metrics
                if best_epoch < 0 or metrics.get(MONITOR, 0.0) > best_metrics.get(MONITOR, 0.0):
                    best_epoch, best_metrics, bad_evals = epoch, metrics, 0
                    save_checkpoint(
                        out / BEST_CHECKPOINT,
                        model,
                        model.model_args,
                        config,
                        metrics,
                        extra={"epoch": epoch},
                        embeddings=embedding,
                    )
                else:
                    bad_evals += 1
            record["seconds"] = time.perf_counter() - epoch_clock
            record["peak_memory_mb"] = peak_memory_mb(device)
            history.append(record)
            with (out / LOG_FILE).open("a", encoding="utf-8") as log:
                log.write(json.dumps(record, sort_keys=True) + "\n")
            _save_resume_state(
                out / LAST_CHECKPOINT,
                model,
                config,
                optimizer,
                generator,
                {
                    "epoch": epoch,
                    "history": history,
                    "best_epoch": best_epoch,
                    "best_metrics": best_metrics,
                    "bad_evals": bad_evals,
                },
                edges,
                model_x,
            )
            advance(1)
            if bad_evals >= cfg.patience:
                stopped_early = True
                reporter.note(
                    f"early stop at epoch {epoch}: best {MONITOR} "
                    f"{best_metrics.get(MONITOR, 0.0):.4f} at epoch {best_epoch}"
                )
                break

    return TrainResult(
        best_epoch=best_epoch,
        best_metrics=best_metrics,
        history=history,
        checkpoint=out / BEST_CHECKPOINT,
        seconds=time.perf_counter() - clock,
        stopped_early=stopped_early,
    )


def _loss_terms(
    model: KGRec,
    ego: Mapping[str, Tensor],
    final: Mapping[str, Tensor],
    users: Tensor,
    pos: Tensor,
    neg: Tensor,
    cfg: TrainConfig,
) -> dict[str, Tensor]:
    """BPR on ``(users [B], pos [B], neg [B, n])`` plus L2 on their ego embeddings."""
    u = final[USER][users]
    pos_score = (u * final[ITEM][pos]).sum(-1)
    neg_score = (u.unsqueeze(1) * final[ITEM][neg]).sum(-1)
    reg = l2_regularization(
        ego[USER][users], ego[ITEM][pos], ego[ITEM][neg], batch_size=users.numel()
    )
    return {"bpr": bpr_loss(pos_score, neg_score), "l2": cfg.l2 * reg.to(u.device)}


def _kd_term(
    final: Mapping[str, Tensor],
    teacher: EmbeddingTeacher,
    users: Tensor,
    pos: Tensor,
    random_items: Tensor,
    cfg: TrainConfig,
    user_degree: Tensor | None = None,
) -> Tensor:
    """Listwise KD over each batch user's candidates ``[pos, teacher top-K, random]``.

    ``random_items [B, n]`` holds uniformly drawn items per batch row; each user uses the
    row where it first appears. With ``kd_cold_degree = c > 0`` a user with ``d`` training
    interactions is weighted ``min(1, c / d)`` (``user_degree [num_users]``): the teacher
    speaks loudest where the collaborative signal is thinnest.
    """
    unique, first = _first_occurrence(users)
    parts = [pos[first].unsqueeze(1)]
    top = teacher.candidates(unique)
    if top is not None:
        parts.append(top)
    parts.append(random_items[first])
    candidates = torch.cat(parts, dim=1)  # [U, C]
    student = (final[USER][unique].unsqueeze(1) * final[ITEM][candidates]).sum(-1)
    weight = None
    if cfg.kd_cold_degree > 0 and user_degree is not None:
        weight = (cfg.kd_cold_degree / user_degree[unique].clamp(min=1)).clamp(max=1.0)
    return listwise_kd_loss(
        student, teacher.score(unique, candidates), cfg.kd_temperature, weight=weight
    )


def _kg_term(model: KGRec, ego: Mapping[str, Tensor], kg_batch: list[Tensor]) -> Tensor:
    """TransE loss on the model's ego embeddings and relation vectors."""
    head, rel, tail, neg = kg_batch
    flat = torch.cat([ego[t] for t in model.node_types], dim=0)
    return kg_loss(flat[head], model.relation_emb[rel], flat[tail], flat[neg])


def _rewrite_log(path: Path, history: list[dict[str, Any]]) -> None:
    """Start the JSONL log from ``history`` (empty for a fresh run)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in history), "utf-8")
    os.replace(tmp, path)


def _save_resume_state(
    path: Path,
    model: KGRec,
    config: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    progress: dict[str, Any],
    edges: Mapping[EdgeType, Tensor],
    x_dict: Mapping[str, Tensor] | None,
) -> None:
    extra = dict(progress)
    extra["optimizer"] = optimizer.state_dict()
    extra["rng"] = {"torch": torch.get_rng_state(), "sampler": generator.get_state()}
    embedding = model.get_embedding(edges, x_dict)
    save_checkpoint(
        path, model, model.model_args, config, progress["best_metrics"], extra, embedding
    )


def _load_resume_state(
    resume: Path,
    model: KGRec,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> dict[str, Any]:
    path = resume / LAST_CHECKPOINT if resume.is_dir() else resume
    saved, meta = load_checkpoint(path, map_location="cpu")
    if saved.model_args != model.model_args:
        raise KgrecError(f"{path}: the checkpoint's model differs from the configured one")
    model.load_state_dict(saved.state_dict())
    optimizer.load_state_dict(meta.extra["optimizer"])
    torch.set_rng_state(meta.extra["rng"]["torch"])
    generator.set_state(meta.extra["rng"]["sampler"])
    return meta.extra


def iter_history(path: Path) -> Iterator[dict[str, Any]]:
    """Read ``train_log.jsonl`` back."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)
