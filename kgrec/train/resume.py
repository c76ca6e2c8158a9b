"""What an interrupted ``kgrec train`` resumes from: ``last.pt``, written after every epoch.

It holds (with ``teacher.pt``, written once beside it) the tuned teacher (so a resumed run
does not tune it again), the stage (``validation``
or ``refit``), the GNN's parameters, the optimiser's and the cut sampler's state, the epoch
records and the best parameters so far, and the configuration (a resume with other settings
is refused by the caller). It loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from kgrec.config import Config
from kgrec.errors import KgrecError
from kgrec.files import load_torch, save_torch
from kgrec.nn.ensemble import Ensemble
from kgrec.train.checkpoint import RESUME_FILE as RESUME_FILE
from kgrec.train.checkpoint import TEACHER_FILE
from kgrec.train.loop import FitResult

if TYPE_CHECKING:
    from kgrec.train.gnn import GNNTrainer

RESUME_FORMAT = 3


def run_config(config: Config) -> dict[str, Any]:
    """The configuration a run stores (checkpoints and resume state), as plain values."""
    return {
        "model": asdict(config.model),
        "teacher": asdict(config.teacher),
        "train": asdict(config.train),
    }


def load_resume_state(path: Path) -> dict[str, Any]:
    """A ``last.pt`` written by :class:`RunState` (``weights_only``)."""
    state = load_torch(path, "kgrec train without --resume", map_location="cpu")
    teacher = path.parent / TEACHER_FILE
    if isinstance(state, dict) and teacher.exists():
        state["teacher"] = load_torch(teacher, "kgrec train without --resume")
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise KgrecError(f"{path}: not a resume state of this kgrec; train without --resume")
    if "teacher" not in state:
        raise KgrecError(f"{path}: {TEACHER_FILE} beside it is missing; train without --resume")
    return state


class RunState:
    """Writes ``last.pt`` after each epoch and restores a trainer from it."""

    def __init__(self, path: Path, config: dict[str, Any], teacher: Ensemble) -> None:
        self.path = path
        self.config = config
        save_torch(teacher.state(), path.parent / TEACHER_FILE)  # once: it does not change

    def save(
        self,
        stage: str,
        trainer: GNNTrainer,
        fitted: FitResult,
        best: dict[str, Tensor],
        **chosen: Any,
    ) -> None:
        """The state after the epoch ``fitted`` just recorded (atomic write)."""
        save_torch(
            {
                "format": RESUME_FORMAT,
                "stage": stage,
                "config": self.config,
                "model": {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()},
                "optimizer": trainer.optimizer.state_dict(),
                "generator": trainer.generator.get_state(),
                "fit": {
                    "history": fitted.history,
                    "best_epoch": fitted.best_epoch,
                    "best_metrics": fitted.best_metrics,
                },
                "best": {k: v.detach().cpu() for k, v in best.items()},
                **chosen,
            },
            self.path,
        )

    @staticmethod
    def restore(saved: dict[str, Any] | None, trainer: GNNTrainer) -> FitResult | None:
        """Put the saved parameters, optimiser and sampler state into ``trainer``; the fit
        so far (``None`` without a saved state)."""
        if saved is None:
            return None
        trainer.model.load_state_dict(saved["model"])
        trainer.optimizer.load_state_dict(saved["optimizer"])
        trainer.generator.set_state(saved["generator"])
        fit = saved["fit"]
        return FitResult(
            history=list(fit["history"]),
            best_epoch=int(fit["best_epoch"]),
            best_metrics=dict(fit["best_metrics"]),
        )
