"""Retired items and forgotten users: the durable lists in ``<artifacts>/lifecycle/``.

``kgrec items retire`` and ``kgrec users forget`` write them (:mod:`kgrec.lifecycle`);
serving reads them on every start (json only, so ``recommend`` stays light), and
``build-graph`` carries the folder over every rebuild, so neither a rebuild nor a retrain
brings a retired item or a forgotten user back::

    retired.json    {"format": 1, "items": {item_id: {"at": ISO-8601}}}
    forgotten.json  {"format": 1, "users": {token: {"at": ISO-8601, "tombstone": str}}}
    key             the secret of the tokens (64 hex digits)
    audit.log       one JSON line per retire, unretire and forget

A forgotten user is kept only as a *token*, the HMAC-SHA256 of their id under the folder's
secret ``key``: a rebuild can still recognise the id in the raw files and drop it, and
``recommend`` can refuse it by name, but the lists and the audit log never hold the id
itself (nor can it be guessed from them without the key). Every file is private (folder
0700, files 0600) and written atomically.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kgrec.errors import KgrecError
from kgrec.files import private_dir, write_private

LIFECYCLE_DIR = "lifecycle"
FORMAT = 1
TOMBSTONE = "forgotten:"
"""Prefix of the id a forgotten user's index keeps in the id maps (no other user shifts)."""


def lifecycle_dir(artifacts_dir: Path | str) -> Path:
    """``<artifacts>/lifecycle``."""
    return Path(artifacts_dir) / LIFECYCLE_DIR


def now() -> str:
    """ISO-8601 UTC, seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read(path: Path, key: str) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data[key]
        if data.get("format") != FORMAT or not isinstance(entries, dict):
            raise ValueError(f"format {data.get('format')!r}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KgrecError(f"{path} is unreadable ({exc}): restore it from a backup") from exc
    return entries


def _write(path: Path, key: str, entries: dict[str, Any]) -> None:
    body = {"format": FORMAT, key: dict(sorted(entries.items()))}
    write_private(path, json.dumps(body, indent=1, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------- retired items


def load_retired(artifacts_dir: Path | str) -> dict[str, dict[str, Any]]:
    """``{item_id: {"at": ...}}`` of the retired items (empty when none)."""
    return _read(lifecycle_dir(artifacts_dir) / "retired.json", "items")


def save_retired(artifacts_dir: Path | str, items: dict[str, dict[str, Any]]) -> None:
    """Replace ``retired.json`` atomically (private)."""
    _write(lifecycle_dir(artifacts_dir) / "retired.json", "items", items)


# --------------------------------------------------------------------------- forgotten users


def _key(artifacts_dir: Path | str, *, create: bool) -> bytes | None:
    path = lifecycle_dir(artifacts_dir) / "key"
    if not path.exists():
        if not create:
            return None
        write_private(path, secrets.token_hex(32) + "\n")
    try:
        return bytes.fromhex(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError) as exc:
        raise KgrecError(f"{path} is unreadable ({exc}): restore it from a backup") from exc


def token(key: bytes, user_id: str) -> str:
    """The HMAC-SHA256 of ``user_id`` under ``key``, 64 hex digits."""
    return hmac.new(key, str(user_id).encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ForgetList:
    """The forgotten users of an artifact folder (tokens only, see the module docstring)."""

    key: bytes | None
    users: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, artifacts_dir: Path | str, *, create_key: bool = False) -> ForgetList:
        users = _read(lifecycle_dir(artifacts_dir) / "forgotten.json", "users")
        key = _key(artifacts_dir, create=create_key or bool(users))
        return cls(key, users)

    def token(self, user_id: str) -> str:
        if self.key is None:
            raise KgrecError("no lifecycle key: load the list with create_key=True")
        return token(self.key, user_id)

    def since(self, user_id: str) -> str | None:
        """When ``user_id`` was forgotten (``None``: never); a tombstone counts too."""
        if not self.users or self.key is None:
            return None
        if str(user_id).startswith(TOMBSTONE):
            hits = [v for v in self.users.values() if v.get("tombstone") == str(user_id)]
            return str(hits[0].get("at", "")) if hits else None
        entry = self.users.get(token(self.key, user_id))
        return str(entry.get("at", "")) if entry is not None else None

    def contains(self, user_id: str) -> bool:
        return self.since(user_id) is not None

    def keep(self, user_ids: Iterable[str]) -> list[bool]:
        """Per id, whether it is *not* forgotten (the rows a rebuild keeps)."""
        if not self.users or self.key is None:
            return [True for _ in user_ids]
        key = self.key
        return [token(key, str(u)) not in self.users for u in user_ids]


def tombstone_of(user_token: str) -> str:
    """The id a forgotten user's index keeps: ``forgotten:<16 hex digits of the token>``."""
    return f"{TOMBSTONE}{user_token[:16]}"


def save_forgotten(artifacts_dir: Path | str, users: dict[str, dict[str, Any]]) -> None:
    """Replace ``forgotten.json`` atomically (private)."""
    _write(lifecycle_dir(artifacts_dir) / "forgotten.json", "users", users)


def forgotten_error(user_id: str, since: str) -> KgrecError:
    """The one-line error for a request about a forgotten user."""
    return KgrecError(
        f"user {user_id!r} was forgotten on {since} (kgrec users forget): kgrec keeps nothing "
        "about them and serves or records nothing for them"
    )


# ------------------------------------------------------------------------------ audit log


def audit(artifacts_dir: Path | str, record: dict[str, Any]) -> Path:
    """Append one JSON line (``record`` with ``at``) to ``audit.log`` (0600), fsynced."""
    folder = private_dir(lifecycle_dir(artifacts_dir))
    path = folder / "audit.log"
    line = json.dumps({"at": now(), **record}, ensure_ascii=False, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path
