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
==================  ================================================================

Writes are atomic: a temporary file in the same folder, then ``os.replace``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch_geometric
from torch import Tensor

from kgrec import __version__
from kgrec.errors import KgrecError
from kgrec.files import save_torch
from kgrec.nn.ensemble import Ensemble
from kgrec.nn.hybrid import Hybrid
from kgrec.nn.model import ItemEntityGraph, KGRec

FORMAT = 2


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
) -> Path:
    """Write ``hybrid`` and its metadata to ``path`` atomically; returns ``path``."""
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
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors have several types
        raise KgrecError(f"{path}: not a kgrec checkpoint ({exc})") from exc
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
        model = KGRec(**payload["model_args"])
        model.load_state_dict(payload["state_dict"])
        graph = payload["kg_graph"]
        model.set_graph(ItemEntityGraph(**{**graph, "types": tuple(graph["types"])}))
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
        item_input: ``[I, d]`` GNN input item embeddings (``None`` without a GNN).
        item_output: ``[I, d]`` normalised output embeddings divided by the temperature.
        decay: The GNN's history decay.
        teacher: :meth:`Ensemble.state` (``None`` without a teacher).
    """

    kind: str
    alpha: float
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
        item_input=serving.get("item_input"),
        item_output=serving.get("item_output"),
        decay=float(serving.get("decay", 1.0)),
        teacher=payload["teacher"],
    )
