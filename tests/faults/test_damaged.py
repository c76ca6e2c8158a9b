"""Damaged files and bad values are one-line errors that say what to do, never tracebacks
and never silently accepted (failures 7, 9 and 10)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from kgrec.cli import app
from kgrec.store.server import FalkorDBServer
from tests.faults.helpers import one_line_error, write_config

runner = CliRunner()
GRAPH = "g"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The demo in its own database graph, a model trained for 2 epochs, its bundle."""
    root = tmp_path_factory.mktemp("damaged")
    home, artifacts = root / "home", root / "art"
    config = write_config(root / "c.yaml", home, artifacts, GRAPH)
    env = {"KGREC_HOME": str(home)}
    steps = [
        ["build-graph", "-c", str(config), "--json"],
        ["train", "-c", str(config), "--no-text", "--kd-weight", "0", "--epochs", "2"],
        ["recommend", "-c", str(config), "--user", "u0001", "-f", "json"],
    ]
    for step in steps:
        result = runner.invoke(app, step, env=env)
        assert result.exit_code == 0, result.output
    yield {"home": home, "artifacts": artifacts, "config": config, "root": root}
    FalkorDBServer(home).stop()


@pytest.fixture
def copy(served: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """A private copy of the artifacts (same database graph)."""
    artifacts = tmp_path / "art"
    shutil.copytree(served["artifacts"], artifacts)
    config = write_config(tmp_path / "c.yaml", served["home"], artifacts, GRAPH)
    return {**served, "artifacts": artifacts, "config": config}


def invoke(paths: dict[str, Path], *args: str) -> object:
    return runner.invoke(
        app, [*args, "-c", str(paths["config"])], env={"KGREC_HOME": str(paths["home"])}
    )


def flip_inside(path: Path, needle: bytes) -> None:
    """Change one byte inside ``needle``'s bytes in ``path`` (same size, same place)."""
    data = bytearray(path.read_bytes())
    at = bytes(data).find(needle)
    assert at >= 0
    data[at + len(needle) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["graph.pt", "id_maps.parquet", "tables/items.parquet"])
def test_a_truncated_artifact_names_itself_and_the_rebuild(
    copy: dict[str, Path], name: str
) -> None:
    path = copy["artifacts"] / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = invoke(copy, "evaluate")
    assert result.exit_code == 1  # type: ignore[attr-defined]
    line = one_line_error(result)
    assert f"{path} is damaged" in line and "kgrec build-graph" in line


def test_a_damaged_model_of_the_same_size_is_refused(copy: dict[str, Path]) -> None:
    model = copy["artifacts"] / "model" / "model.pt"
    teacher = torch.load(model, weights_only=True)["teacher"]  # in every model it serves
    items = teacher["components"][0]["model"]["value"]
    size = model.stat().st_size
    flip_inside(model, items.numpy().tobytes()[:256])
    assert model.stat().st_size == size
    result = invoke(copy, "recommend", "--user", "u0001")
    assert result.exit_code == 1  # type: ignore[attr-defined]
    line = one_line_error(result)
    assert f"{model} is damaged (checksum mismatch)" in line and "kgrec train" in line


def test_a_damaged_bundle_is_rebuilt_from_the_model(copy: dict[str, Path]) -> None:
    before = invoke(copy, "recommend", "--user", "u0002", "-f", "json")
    array = copy["artifacts"] / "model" / "serving" / "item_embedding.npy"
    data = array.read_bytes()
    stamp = array.stat()
    flip_inside(array, data[-512:])
    import os

    os.utime(array, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # not even the time changed
    after = invoke(copy, "recommend", "--user", "u0002", "-f", "json")
    assert after.exit_code == 0, after.output  # type: ignore[attr-defined]
    assert f"note: {array} was damaged: re-exported the bundle" in after.stderr  # type: ignore[attr-defined]
    assert json.loads(after.stdout) == json.loads(before.stdout)  # type: ignore[attr-defined]
    assert array.read_bytes() == data


def test_a_non_utf8_users_file_names_its_line(copy: dict[str, Path], tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    users.write_bytes(b"u0001\nu\xff0002\n")
    result = invoke(copy, "recommend", "--users-file", str(users))
    assert result.exit_code == 1  # type: ignore[attr-defined]
    line = one_line_error(result)
    assert f"{users}:2: byte 0xff is not UTF-8" in line


def test_a_non_utf8_config_is_named(copy: dict[str, Path], tmp_path: Path) -> None:
    config = tmp_path / "latin1.yaml"
    config.write_bytes("dataset:\n  name: caf\xe9\n".encode("latin-1"))
    result = runner.invoke(app, ["build-graph", "-c", str(config), "--no-db"])
    assert result.exit_code == 1
    assert f"{config}:2: byte 0xe9 is not UTF-8" in one_line_error(result)


@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_bad_batch_size_is_named(copy: dict[str, Path], value: str) -> None:
    result = invoke(copy, "build-graph", "--batch-size", value)
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert f"store.batch_size: must be at least 1, got {value}" in one_line_error(result)


def test_a_runaway_read_is_aborted_by_the_server(copy: dict[str, Path]) -> None:
    runaway = "MATCH (a), (b), (c) RETURN count(a) AS n"  # ~2e9 rows on the demo graph
    clock = time.monotonic()
    result = invoke(copy, "cypher", "run", runaway, "--timeout", "0.5")
    assert result.exit_code == 3  # type: ignore[attr-defined]
    assert "timed out after 0.5 s" in one_line_error(result)
    assert time.monotonic() - clock < 20
    quick = invoke(copy, "cypher", "run", "MATCH (u:User) RETURN count(u) AS n", "-f", "json")
    assert json.loads(quick.stdout) == [{"n": 400}]  # type: ignore[attr-defined]


def test_a_retried_request_id_is_recorded_once(copy: dict[str, Path]) -> None:
    args = ["recommend", "--user", "u0003", "-k", "5", "--record", "-f", "json"]
    for _ in range(2):
        result = invoke(copy, *args, "--request-id", "retry-1")
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
        assert json.loads(result.stdout)["request_id"] == "retry-1"  # type: ignore[attr-defined]
    count = "MATCH ()-[r:RECOMMENDED {request_id: 'retry-1'}]->() RETURN count(r) AS n"
    counted = invoke(copy, "cypher", "run", count, "-f", "json")
    assert json.loads(counted.stdout) == [{"n": 5}]  # type: ignore[attr-defined]
    other = invoke(copy, "recommend", "--user", "u0003", "-k", "3", "--record",
                   "--request-id", "retry-1")  # fmt: skip
    assert other.exit_code == 1  # type: ignore[attr-defined]
    assert "already recorded with other items" in one_line_error(other)
