"""Fixtures of the fault-injection suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A private kgrec state folder; its server (if any) is stopped at the end."""
    from kgrec.store.server import FalkorDBServer

    folder = tmp_path / "home"
    folder.mkdir()
    yield folder
    server = FalkorDBServer(folder)
    if server.status() is not None:
        server.stop()
