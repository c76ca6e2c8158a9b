"""A running embedded server, seen as its administrator: who it is, and its append-only log.

Used by :mod:`kgrec.store.server`: :func:`server_pid` finds our server without
``server.json`` (by port, password and data folder); :func:`ensure_appendonly` turns the
append-only log on in a server an older kgrec started without it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis

from kgrec.errors import StoreError

HOST = "127.0.0.1"
LOG_TIMEOUT_S = 60.0
OFF_ON_PURPOSE = "# appendonly off on purpose: FalkorDBServer(appendonly=False), a benchmark"
"""Marks a ``redis.conf`` whose append-only log is off deliberately (left off)."""


def _client(port: int, password: str) -> Any:
    return redis.Redis(host=HOST, port=port, password=password, socket_timeout=5)


def server_pid(port: int, password: str, data_dir: Path) -> int | None:
    """The pid of the server on ``port`` if it takes ``password`` and keeps ``data_dir``."""
    client = _client(port, password)
    try:
        folder = client.config_get("dir").get("dir")
        if folder is None or Path(folder).resolve() != data_dir.resolve():
            return None
        return int(client.info("server")["process_id"])
    except (redis.exceptions.RedisError, OSError, KeyError, ValueError):
        return None
    finally:
        client.close()


def ensure_appendonly(port: int, password: str) -> None:
    """Turn the append-only log on in a running server started without it, and wait until
    the log holds the whole data set."""
    client = _client(port, password)
    try:
        if client.config_get("appendonly").get("appendonly") == "yes":
            return
        client.config_set("appendonly", "yes")
        deadline = time.monotonic() + LOG_TIMEOUT_S
        while time.monotonic() < deadline:
            info = client.info("persistence")
            if (
                info.get("aof_enabled") == 1
                and not info.get("aof_rewrite_in_progress")
                and not info.get("aof_rewrite_scheduled")
            ):
                return
            time.sleep(0.05)
        raise StoreError(
            f"FalkorDB did not finish writing its append-only log in {LOG_TIMEOUT_S:.0f} s"
        )
    except redis.exceptions.RedisError as exc:
        raise StoreError(f"cannot turn on the append-only log of FalkorDB: {exc}") from exc
    finally:
        client.close()
