"""Atomic writes: a reader sees the old file (or folder) or the new one, never half of one.

Files are written to a temporary name in the same folder and renamed over the target
(``os.replace`` is atomic on one file system); folders are filled under a staging name and
swapped in with two renames, the old copy removed last.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any


def save_torch(obj: Any, path: Path) -> None:
    """``torch.save(obj, path)`` atomically (creates the parent folder)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def staging_dir(target: Path) -> Path:
    """An empty folder beside ``target`` to fill before :func:`swap_dir`."""
    staging = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def swap_dir(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` with two renames (the old copy is removed last)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
