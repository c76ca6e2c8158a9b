"""Shared test helpers: where the public datasets live, and skipping cleanly without them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = Path(os.environ.get("KGREC_DATASETS", REPO.parent / "shared" / "datasets"))
"""Real public datasets, read in place (never copied into the repository)."""


def shared_dataset(name: str) -> Path:
    """Path of ``SHARED_DATASETS/name``; skips the calling test when it is absent."""
    path = SHARED_DATASETS / name
    if not path.is_dir():
        pytest.skip(f"dataset {name!r} not found under {SHARED_DATASETS} (set KGREC_DATASETS)")
    return path


@pytest.fixture(scope="session")
def falkordb_home(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A kgrec state folder with a real embedded FalkorDB server running (stopped at the end).

    Tests that use it get a fresh graph name from :func:`graph_name` so they do not interfere.
    """
    from kgrec.store.server import FalkorDBServer

    home = tmp_path_factory.mktemp("kgrec-home")
    server = FalkorDBServer(home)
    server.start()
    yield home
    server.stop()


@pytest.fixture
def graph_name(request: pytest.FixtureRequest) -> str:
    """A graph name unique to the calling test."""
    import re

    return "t_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]
