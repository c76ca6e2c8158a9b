"""Checkpoints that load with ``torch.load(weights_only=True)``.

A checkpoint holds only tensors and plain Python values (dict, list, tuple, str, int, float,
bool, None), so loading it never runs pickled code:

==================  ================================================================
key                 value
==================  ================================================================
``format``          ``1``
``model_args``      :attr:`KGRec.model_args` (constructor arguments)
``state_dict``      the model's parameters
``user_embedding``  final user embeddings ``[num_users, d]`` (for serving)
``item_embedding``  final item embeddings ``[num_items, d]``
``num_nodes``       nodes per node type (the id maps' sizes)
``config``          the run's configuration (plain dict)
``metrics``         e.g. the best validation metrics
``extra``           anything else plain (epoch, optimizer state, RNG states, history)
``versions``        torch, torch_geometric and kgrec versions
==================  ================================================================

Writes are atomic: a temporary file in the same folder, then ``os.replace``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch_geometric
from torch import Tensor

from kgrec import __version__
from kgrec.errors import KgrecError
from kgrec.files import save_torch
from kgrec.nn.model import KGRec

FORMAT = 1


@dataclass(frozen=True)
class CheckpointMeta:
    """Everything in a checkpoint besides the model's weights."""

    model_args: dict[str, Any]
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
    model: KGRec,
    model_args: dict[str, Any],
    config: dict[str, Any],
    metrics: dict[str, Any],
    extra: dict[str, Any] | None = None,
    embeddings: dict[str, Tensor] | None = None,
) -> Path:
    """Write ``model`` and its metadata to ``path`` atomically; returns ``path``.

    Args:
        embeddings: Final ``{"user": [num_users, d], "item": [num_items, d]}``; default: the
            model's serving cache (:meth:`KGRec.get_embedding`).
    """
    path = Path(path)
    emb = embeddings if embeddings is not None else model.get_embedding()
    payload = {
        "format": FORMAT,
        "model_args": model_args,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "user_embedding": emb["user"].detach().float().cpu(),
        "item_embedding": emb["item"].detach().float().cpu(),
        "num_nodes": dict(model.num_nodes),
        "config": config,
        "metrics": metrics,
        "extra": extra or {},
        "versions": library_versions(),
    }
    save_torch(payload, path)
    return path


def _read(path: Path, map_location: str | torch.device | None) -> dict[str, Any]:
    if not path.exists():
        raise KgrecError(f"no checkpoint at {path}: run `kgrec train` first")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors have several types
        raise KgrecError(f"{path}: not a kgrec checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise KgrecError(f"{path}: not a kgrec checkpoint of format {FORMAT}")
    return payload


def load_checkpoint(
    path: Path | str, map_location: str | torch.device | None = "cpu"
) -> tuple[KGRec, CheckpointMeta]:
    """Rebuild the model (eval mode, serving cache filled) and its metadata from ``path``."""
    payload = _read(Path(path), map_location)
    model = KGRec(**payload["model_args"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    model.set_embedding(payload["user_embedding"], payload["item_embedding"])
    meta = CheckpointMeta(
        model_args=payload["model_args"],
        num_nodes=payload["num_nodes"],
        config=payload["config"],
        metrics=payload["metrics"],
        extra=payload["extra"],
        versions=payload["versions"],
    )
    return model, meta


def read_embeddings(
    path: Path | str, map_location: str | torch.device | None = "cpu"
) -> tuple[Tensor, Tensor]:
    """Only the stored serving embeddings: ``([num_users, d], [num_items, d])``."""
    payload = _read(Path(path), map_location)
    return payload["user_embedding"], payload["item_embedding"]
