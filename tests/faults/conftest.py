"""Fixtures of the fault-injection suite."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.helpers import servers_of


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A private kgrec state folder; its server (if any) is stopped at the end."""
    from kgrec.errors import KgrecError
    from kgrec.store.server import FalkorDBServer

    folder = tmp_path / "home"
    folder.mkdir()
    yield folder
    server = FalkorDBServer(folder)
    with contextlib.suppress(KgrecError, OSError):
        if server.status() is not None:
            server.stop()
    for pid in servers_of(folder):  # whatever a test left running
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
