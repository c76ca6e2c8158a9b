"""Files on disk: atomic writes, checksums, private state, and the leftovers of killed runs.

Atomic writes: a reader sees the old file (or folder) or the new one, never half of one.
Files are written to a temporary name in the same folder (``.<name>.tmp-<pid>``) and renamed
over the target (``os.replace`` is atomic on one file system); folders are filled under a
staging name and swapped in with two renames, the old copy (``.<name>.old-<pid>``) removed
last. A killed run leaves such a temporary behind: :func:`remove_stale` deletes those whose
process is gone.

Checksums: :func:`save_torch` stores a sha256 of a dict payload's contents inside the file
(key :data:`CHECKSUM`), and :func:`load_torch` verifies it, so a damaged file is an error
that names it and the command that rebuilds it (:class:`DamagedFileError`), never a
traceback and never silently accepted.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

from kgrec.errors import KgrecError

CHECKSUM = "checksum"
"""Key of the content checksum inside a payload written by :func:`save_torch`."""
STALE = re.compile(r"^\..+\.(tmp|old)-(\d+)$")
"""Names of temporaries: ``.<name>.tmp-<pid>`` and ``.<name>.old-<pid>``."""


class DamagedFileError(KgrecError):
    """A file kgrec wrote is truncated or damaged; the message says how to rebuild it."""

    def __init__(self, path: Path | str, why: str, rebuild: str) -> None:
        super().__init__(f"{path} is damaged ({why}): rebuild it with {rebuild}")
        self.path = Path(path)


# ------------------------------------------------------------------------- torch files


def content_digest(obj: Any) -> str:
    """sha256 over a payload of tensors and plain values, in a deterministic order."""
    digest = hashlib.sha256()
    _feed(digest, obj)
    return digest.hexdigest()


def _feed(digest: Any, obj: Any) -> None:
    import torch

    if isinstance(obj, torch.Tensor):
        tensor = obj.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)};".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        digest.update(f"D{len(obj)};".encode())
        for key in sorted(obj, key=repr):
            _feed(digest, key)
            _feed(digest, obj[key])
    elif isinstance(obj, list | tuple):
        digest.update(f"L{len(obj)};".encode())
        for value in obj:
            _feed(digest, value)
    else:
        digest.update(f"V{type(obj).__name__}:{obj!r};".encode())


def save_torch(obj: Any, path: Path) -> None:
    """``torch.save(obj, path)`` atomically (creates the parent folder).

    A dict payload gets a :data:`CHECKSUM` of its contents, verified by :func:`load_torch`.
    """
    import torch

    if isinstance(obj, dict):
        obj = {k: v for k, v in obj.items() if k != CHECKSUM}
        obj[CHECKSUM] = content_digest(obj)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_torch(path: Path, rebuild: str, map_location: Any = "cpu") -> Any:
    """Read a file written by :func:`save_torch` with ``weights_only=True`` and verify it.

    Raises:
        DamagedFileError: unreadable (truncated, not a torch file) or checksum mismatch;
            ``rebuild`` is the command named in the message. Files without a checksum
            (written by older versions) are accepted as they are.
    """
    import torch

    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # truncated zips and bad pickles raise several types
        raise DamagedFileError(path, f"unreadable: {_first_line(exc)}", rebuild) from exc
    if isinstance(payload, dict) and CHECKSUM in payload:
        stored = payload.pop(CHECKSUM)
        if stored != content_digest(payload):
            raise DamagedFileError(path, "checksum mismatch", rebuild)
    return payload


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


# ------------------------------------------------------------------------- file checksums


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksums(folder: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """``{name: {"sha256", "bytes"}}`` of files in ``folder`` (paths relative to it)."""
    return {
        name: {"sha256": file_sha256(folder / name), "bytes": (folder / name).stat().st_size}
        for name in names
    }


def verify_checksums(folder: Path, expected: dict[str, dict[str, Any]], rebuild: str) -> None:
    """Check files against :func:`checksums`; the first mismatch is a :class:`DamagedFileError`."""
    for name, want in sorted(expected.items()):
        path = folder / name
        if not path.exists():
            raise DamagedFileError(path, "missing", rebuild)
        size = path.stat().st_size
        if size != want.get("bytes", size):
            raise DamagedFileError(path, f"{size} bytes instead of {want['bytes']}", rebuild)
        if file_sha256(path) != want.get("sha256"):
            raise DamagedFileError(path, "checksum mismatch", rebuild)


# ------------------------------------------------------------------------- folders


def staging_dir(target: Path) -> Path:
    """An empty folder beside ``target`` to fill before :func:`swap_dir`."""
    staging = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def old_dir(target: Path) -> Path:
    """Where :func:`swap_dir` parks the previous ``target`` until it is removed."""
    return target.parent / f".{target.name}.old-{os.getpid()}"


def swap_dir(staging: Path, target: Path, between: Any = None) -> None:
    """Replace ``target`` by ``staging`` with two renames (the old copy is removed last).

    ``between`` (a callable) runs between the two renames (a fault-injection point).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    old = old_dir(target)
    if target.exists():
        os.replace(target, old)
    if between is not None:
        between()
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def remove_stale(folder: Path, keep: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Delete temporaries (``.<name>.tmp-<pid>``, ``.<name>.old-<pid>``) of dead processes
    in ``folder``, except the names in ``keep``; returns their names."""
    removed: list[str] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = STALE.match(entry.name)
        if match is None or entry.name in keep or _pid_alive(int(match.group(2))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return sorted(removed)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------- private state


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with mode 0700; tighten it if it exists."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_IMODE(path.stat().st_mode) != 0o700:
        path.chmod(0o700)
    return path


def write_private(path: Path, text: str, *, private_parent: bool = True) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600, fsynced (folder 0700 unless
    ``private_parent`` is false: then the folder is only created)."""
    if private_parent:
        private_dir(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def make_private(folder: Path) -> None:
    """Mode 0700 on ``folder`` and its sub-folders, 0600 on its files (existing state)."""
    if not folder.is_dir():
        return
    folder.chmod(0o700)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            Path(root, name).chmod(0o700)
        for name in files:
            path = Path(root, name)
            if not path.is_symlink():
                path.chmod(0o600)
