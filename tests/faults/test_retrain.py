"""A killed retrain never leaves a half-trained model where ``recommend`` reads it
(failure 6); a resumed run keeps its settings; a run replaces the served model only when it
beats it on validation."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgrec.cli import app
from kgrec.store.server import FalkorDBServer
from tests.faults.helpers import one_line_error, start_kgrec

runner = CliRunner()
FAST = ["--no-text", "--kd-weight", "0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The demo built (no database) and a model trained for 3 epochs."""
    root = tmp_path_factory.mktemp("retrain")
    home, artifacts = root / "home", root / "art"
    a = ["--artifacts", str(artifacts)]
    env = {"KGREC_HOME": str(home)}
    built = runner.invoke(app, ["build-graph", *a, "--no-db", "--json"], env=env)
    assert built.exit_code == 0, built.output
    result = runner.invoke(app, ["train", *a, *FAST, "--epochs", "3", "--json"], env=env)
    assert result.exit_code == 0, result.output
    yield {"home": home, "artifacts": artifacts}
    FalkorDBServer(home).stop()


@pytest.fixture
def copy(trained: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    artifacts = tmp_path / "art"
    shutil.copytree(trained["artifacts"], artifacts)
    return {"home": trained["home"], "artifacts": artifacts}


def model_id(artifacts: Path, home: Path) -> str:
    result = runner.invoke(
        app,
        ["recommend", "--artifacts", str(artifacts), "--user", "u0001", "-f", "json"],
        env={"KGREC_HOME": str(home)},
    )
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["model_id"])


def test_a_killed_retrain_leaves_the_served_model(copy: dict[str, Path]) -> None:
    artifacts, home = copy["artifacts"], copy["home"]
    model = artifacts / "model" / "model.pt"
    before, served = model.read_bytes(), model_id(artifacts, home)
    # the run's resume state after its first epoch (before this fix it overwrote model/)
    states = [artifacts / "model" / ".training" / "last.pt", model.parent / "last.pt"]
    started = time.time()
    log = artifacts.parent / "train.log"
    retrain = start_kgrec(  # a fresh interpreter: training threads do not survive a fork
        home, "train", "--artifacts", str(artifacts), *FAST, "--epochs", "200", log=log
    )
    deadline = time.monotonic() + 300
    while not any(p.exists() and p.stat().st_mtime > started for p in states):
        assert time.monotonic() < deadline and retrain.poll() is None, log.read_text()
        time.sleep(0.05)
    time.sleep(0.2)  # let the first save complete (it is atomic: a temp file, then a rename)
    os.kill(retrain.pid, signal.SIGKILL)  # during its second epoch
    assert retrain.wait(60) == -signal.SIGKILL

    assert model.read_bytes() == before  # never the half-trained run's model
    assert model_id(artifacts, home) == served

    resumed = runner.invoke(
        app,
        ["train", "--artifacts", str(artifacts), *FAST, "--epochs", "3", "--resume", "--json"],
        env={"KGREC_HOME": str(home)},
    )
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads(resumed.stdout)
    assert summary["served_model"] == str(model)
    assert not (artifacts / "model" / ".training").exists()
    if summary["promoted"]:
        assert model.read_bytes() != before
    else:  # kept beside the served model, which stays
        assert model.read_bytes() == before
        assert (artifacts / "model" / "candidate" / "model.pt").exists()
        assert "does not beat" in summary["promotion"]


def test_resume_under_other_settings_is_refused(copy: dict[str, Path]) -> None:
    a = ["--artifacts", str(copy["artifacts"])]
    result = runner.invoke(
        app,
        ["train", *a, *FAST, "--epochs", "4", "--dim", "32", "--resume"],
        env={"KGREC_HOME": str(copy["home"])},
    )
    assert result.exit_code == 1
    line = one_line_error(result)
    assert "cannot resume" in line and "model.embedding_dim 64 -> 32" in line


@pytest.mark.parametrize("epochs", ["0", "-3"])
def test_zero_or_negative_epochs_are_refused(copy: dict[str, Path], epochs: str) -> None:
    a = ["--artifacts", str(copy["artifacts"])]
    result = runner.invoke(app, ["train", *a, *FAST, "--epochs", epochs], env={})
    assert result.exit_code == 1
    assert f"train.epochs: must be at least 1, got {epochs}" in one_line_error(result)


def test_a_zero_dimension_is_refused(copy: dict[str, Path]) -> None:
    a = ["--artifacts", str(copy["artifacts"])]
    result = runner.invoke(app, ["train", *a, *FAST, "--dim", "0"], env={})
    assert result.exit_code == 1
    assert "model.embedding_dim: must be at least 1, got 0" in one_line_error(result)
