"""The one device resolver: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` -> a ``torch.device``."""

from __future__ import annotations

import torch

from kgrec.errors import KgrecError


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU, or a name torch
    does not know, is a :class:`~kgrec.errors.KgrecError` (a clear message, no traceback)."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise KgrecError(f"device {name!r} was asked for but no CUDA device is available")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise KgrecError(f"unknown device {name!r}: use auto, cpu or cuda") from exc
