"""Checkpoints that load with ``torch.load(weights_only=True)``.

A checkpoint holds only tensors and plain Python values (dict, list, tuple, str, int, float,
bool, None), so loading it never runs pickled code. It stores a whole
:class:`~kgrec.nn.hybrid.Hybrid` (the served scorer):

==================  ================================================================
key                 value
==================  ================================================================
``format``          ``2``
``kind``            ``hybrid``, ``gnn`` or ``teacher`` (what is served)
``alpha``           the GNN's weight in the hybrid
``model_args``      :attr:`KGRec.model_args` (``None`` without a GNN)
``state_dict``      the GNN's parameters (``None`` without a GNN)
``kg_graph``        the GNN's item-entity graph (tensors and the entity types)
``teacher``         :meth:`Ensemble.state` (``None`` without a teacher)
``serving``         ``item_input [I, d]``, ``item_output [I, d]`` (normalised, divided by the
                    temperature) and ``decay``: what numpy serving needs of the GNN
``num_nodes``       nodes per node type (the id maps' sizes)
``config``          the run's configuration (plain dict)
``metrics``         the validation metrics
``extra``           anything else plain (best epoch, teacher summary, ...)
``versions``        torch, torch_geometric and kgrec versions
``checksum``        sha256 of everything above (verified on load)
==================  ================================================================

Writes are atomic: a temporary file in the same folder, then ``os.replace``. A damaged or
truncated checkpoint is a one-line error naming the file and ``kgrec train`` (a checkpoint
written before checksums loads unchecked).

Retraining never leaves a half-trained model where ``recommend`` reads it: ``kgrec train``
trains into ``<out>/.training/`` and :func:`promote` moves the run into ``<out>/`` only when
it beat the served model on validation :data:`MONITOR` (else into ``<out>/candidate/``).
:func:`check_resume_config` refuses to resume a run under other settings.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch_geometric
from torch import Tensor

from kgrec import __version__
from kgrec.errors import KgrecError
from kgrec.files import DamagedFileError, load_torch, save_torch
from kgrec.nn.ensemble import Ensemble
from kgrec.nn.hybrid import Hybrid
from kgrec.nn.model import ItemEntityGraph, KGRec
from kgrec.train.loop import MONITOR

FORMAT = 2
MODEL_FILE = "model.pt"
RESUME_FILE = "last.pt"
TEACHER_FILE = "teacher.pt"
"""The tuned teacher of a run, beside ``last.pt`` (written once, read by a resume)."""
LOG_FILE = "train_log.jsonl"
RUN_DIR = ".training"
"""Where ``kgrec train`` trains, inside the model folder (kept after a kill, for --resume)."""
CANDIDATE_DIR = "candidate"
"""Where a finished run that did not beat the served model is kept."""
RESUMABLE = frozenset({"train.epochs", "train.device", "train.patience", "train.eval_every"})
"""Settings a resumed run may change; any other difference refuses the resume."""


@dataclass(frozen=True)
class CheckpointMeta:
    """Everything in a checkpoint besides the scorer."""

    kind: str
    num_nodes: dict[str, int]
    config: dict[str, Any]
    metrics: dict[str, Any]
    extra: dict[str, Any]
    versions: dict[str, str]


def library_versions() -> dict[str, str]:
    """Versions of torch, torch_geometric and kgrec."""
    return {
        "torch": str(torch.__version__),
        "torch_geometric": str(torch_geometric.__version__),
        "kgrec": str(__version__),
    }


def save_checkpoint(
    path: Path | str,
    hybrid: Hybrid,
    config: dict[str, Any],
    metrics: dict[str, Any],
    extra: dict[str, Any] | None = None,
    x_dict: Mapping[str, Tensor] | None = None,
    edge_types: Sequence[tuple[str, str, str]] = (),
) -> Path:
    """Write ``hybrid`` and its metadata to ``path`` atomically; returns ``path``.

    ``edge_types`` are the knowledge-graph edge types the served scorer reads (the GNN's
    aggregation or the teacher's shared-entity member): explanations walk only those.
    """
    path = Path(path)
    model, teacher = hybrid.model, hybrid.teacher
    serving = None
    if model is not None:
        items_in, items_out = model.serving_embeddings(x_dict)
        serving = {
            "item_input": items_in.detach().cpu(),
            "item_output": items_out.detach().cpu(),
            "decay": model.decay,
        }
    num_nodes = dict(model.num_nodes) if model is not None else {"item": hybrid.num_items}
    payload = {
        "format": FORMAT,
        "kind": hybrid.kind,
        "alpha": float(hybrid.alpha),
        "model_args": model.model_args if model is not None else None,
        "state_dict": (
            {k: v.detach().cpu() for k, v in model.state_dict().items()} if model else None
        ),
        "kg_graph": _graph_state(model.graph) if model is not None else None,
        "teacher": teacher.state() if teacher is not None else None,
        "serving": serving,
        "num_nodes": num_nodes,
        "edge_types": [list(e) for e in edge_types],
        "config": config,
        "metrics": metrics,
        "extra": extra or {},
        "versions": library_versions(),
    }
    save_torch(payload, path)
    return path


def _graph_state(graph: ItemEntityGraph) -> dict[str, Any]:
    state: dict[str, Any] = {
        name: getattr(graph, name).cpu()
        for name in ("item", "entity", "relation", "weight", "entity_type", "entity_index")
    }
    state["types"] = list(graph.types)
    return state


def _read(path: Path, map_location: str | torch.device | None) -> dict[str, Any]:
    if not path.exists():
        raise KgrecError(f"no checkpoint at {path}: run `kgrec train` first")
    payload = load_torch(path, "kgrec train (or restore a copy)", map_location=map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise KgrecError(
            f"{path}: not a kgrec checkpoint of format {FORMAT} (retrain with kgrec train)"
        )
    return payload


def load_checkpoint(
    path: Path | str, map_location: str | torch.device | None = "cpu"
) -> tuple[Hybrid, CheckpointMeta]:
    """Rebuild the served scorer (GNN in eval mode) and its metadata from ``path``."""
    payload = _read(Path(path), map_location)
    model = None
    if payload["model_args"] is not None:
        try:
            model = KGRec(**payload["model_args"])
            model.load_state_dict(payload["state_dict"])
            graph = payload["kg_graph"]
            model.set_graph(ItemEntityGraph(**{**graph, "types": tuple(graph["types"])}))
        except (KeyError, TypeError, RuntimeError) as exc:
            raise KgrecError(
                f"{path}: the checkpoint does not fit this version of the model ({exc}); "
                "retrain with kgrec train"
            ) from exc
        model.eval()
    teacher = Ensemble.from_state(payload["teacher"]) if payload["teacher"] is not None else None
    meta = CheckpointMeta(
        kind=payload["kind"],
        num_nodes=payload["num_nodes"],
        config=payload["config"],
        metrics=payload["metrics"],
        extra=payload["extra"],
        versions=payload["versions"],
    )
    serving = payload["serving"]
    items = (serving["item_input"], serving["item_output"]) if serving else None
    return Hybrid(teacher, model, float(payload["alpha"]), items), meta


@dataclass(frozen=True)
class ServingArrays:
    """What numpy serving reads of a checkpoint (no model rebuilt).

    Attributes:
        kind, alpha: As in the checkpoint.
        num_items: Items the scorer knows.
        edge_types: The knowledge-graph edge types it reads (``(src, rel, dst)``).
        item_input: ``[I, d]`` GNN input item embeddings (``None`` without a GNN).
        item_output: ``[I, d]`` normalised output embeddings divided by the temperature.
        decay: The GNN's history decay.
        teacher: :meth:`Ensemble.state` (``None`` without a teacher).
    """

    kind: str
    alpha: float
    num_items: int
    edge_types: list[tuple[str, str, str]]
    item_input: Tensor | None
    item_output: Tensor | None
    decay: float
    teacher: dict[str, Any] | None


def read_serving(
    path: Path | str, map_location: str | torch.device | None = "cpu"
) -> ServingArrays:
    """The arrays :mod:`kgrec.serve` exports into the serving bundle."""
    payload = _read(Path(path), map_location)
    serving = payload["serving"] or {}
    return ServingArrays(
        kind=payload["kind"],
        alpha=float(payload["alpha"]),
        num_items=int(payload["num_nodes"]["item"]),
        edge_types=[(str(a), str(b), str(c)) for a, b, c in payload.get("edge_types", [])],
        item_input=serving.get("item_input"),
        item_output=serving.get("item_output"),
        decay=float(serving.get("decay", 1.0)),
        teacher=payload["teacher"],
    )


def checkpoint_metrics(path: Path | str) -> dict[str, Any]:
    """The validation metrics stored in a checkpoint."""
    return dict(_read(Path(path), "cpu").get("metrics") or {})


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = list(value) if isinstance(value, tuple) else value
    return flat


def check_resume_config(
    saved: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    allowed: frozenset[str] = RESUMABLE,
    where: Path | str = RESUME_FILE,
) -> None:
    """Refuse to resume a run under other settings than it was started with.

    Args:
        saved: The configuration stored in the resume checkpoint (nested dicts, e.g.
            ``{"model": {...}, "train": {...}}``).
        current: The configuration of this run, in the same shape.
        allowed: Dotted keys that may differ (:data:`RESUMABLE`: epochs, device, patience,
            evaluation interval).

    Raises:
        KgrecError: one line listing every other difference (``train.lr 0.005 -> 0.01``).
    """
    old, new = _flatten(saved), _flatten(current)
    changed = [
        f"{key} {old.get(key, '(unset)')!r} -> {new.get(key, '(unset)')!r}"
        for key in sorted(set(old) | set(new))
        if key not in allowed and old.get(key) != new.get(key)
    ]
    if changed:
        raise KgrecError(
            f"cannot resume the run in {where}: it was started with other settings "
            f"({'; '.join(changed)}); resume with the same settings, or train again "
            "without --resume"
        )


@dataclass(frozen=True)
class Promotion:
    """What :func:`promote` did with a finished run.

    Attributes:
        promoted: The run replaced the served model.
        served: The model ``recommend`` serves now (``<out>/model.pt``).
        kept: Where the run's model went when it was not promoted (``<out>/candidate``).
        new: The run's validation :data:`MONITOR`; ``previous``: the served model's
            (``None`` when there was none, or it was unreadable).
        reason: One line saying why.
    """

    promoted: bool
    served: Path
    kept: Path | None
    new: float
    previous: float | None
    reason: str


def promote(run_dir: Path, out: Path, *, always: bool = False) -> Promotion:
    """Move a finished run into ``out`` if it beat the served model on validation.

    ``run_dir`` holds the run's ``model.pt`` (best epoch), ``last.pt`` and
    ``train_log.jsonl``. Promoted: each is moved into ``out`` with an atomic rename, the model
    last, so ``out/model.pt`` is always a whole model. Not promoted: the run goes to
    ``out/candidate/`` (replacing an older candidate) and ``out/model.pt`` stays.
    The caller holds the artifact folder's lock.
    """
    model = run_dir / MODEL_FILE
    if not model.exists():
        raise KgrecError(f"the training run wrote no model into {run_dir}: nothing to promote")
    new = float(checkpoint_metrics(model).get(MONITOR, 0.0))
    served = out / MODEL_FILE
    previous: float | None = None
    reason = "no model was served before"
    if served.exists():
        try:
            previous = float(checkpoint_metrics(served).get(MONITOR, 0.0))
            reason = ""
        except DamagedFileError as exc:
            reason = f"the served model was unusable ({exc})"
    better = previous is None or new > previous
    if always or better:
        if previous is not None:
            reason = (
                f"validation {MONITOR} {new:.4f} "
                f"{'beats' if new > previous else 'does not beat'} {previous:.4f}"
                + ("" if better else ", promoted as asked (--promote always)")
            )
        for name in (LOG_FILE, TEACHER_FILE, RESUME_FILE, MODEL_FILE):  # the model moves last
            if (run_dir / name).exists():
                os.replace(run_dir / name, out / name)
        shutil.rmtree(run_dir, ignore_errors=True)
        return Promotion(True, served, None, new, previous, reason)
    kept = out / CANDIDATE_DIR
    parked = out / f".{CANDIDATE_DIR}.old-{os.getpid()}"
    if kept.exists():
        os.replace(kept, parked)
    os.replace(run_dir, kept)
    shutil.rmtree(parked, ignore_errors=True)
    reason = (
        f"validation {MONITOR} {new:.4f} does not beat the served model's {previous:.4f}: "
        f"kept {served}; this run is in {kept} (serve it with --checkpoint "
        f"{kept / MODEL_FILE}, or retrain with --promote always)"
    )
    return Promotion(False, served, kept / MODEL_FILE, new, previous, reason)
