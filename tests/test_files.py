"""Checksummed torch files, file checksums, leftovers of killed runs, private state."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from kgrec.files import (
    DamagedFileError,
    checksums,
    load_torch,
    private_dir,
    remove_stale,
    save_torch,
    verify_checksums,
)


def test_a_changed_tensor_or_a_truncated_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    payload = {"w": torch.arange(1000, dtype=torch.float32), "meta": {"k": [1, 2]}}
    save_torch(payload, path)
    loaded = load_torch(path, "kgrec train")
    assert torch.equal(loaded["w"], payload["w"]) and "checksum" not in loaded

    data = bytearray(path.read_bytes())
    data[bytes(data).find(payload["w"].numpy().tobytes()[:64]) + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedFileError, match=r"x\.pt is damaged \(checksum mismatch\)"):
        load_torch(path, "kgrec train")

    save_torch(payload, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DamagedFileError, match=r"unreadable.*rebuild it with kgrec train"):
        load_torch(path, "kgrec train")


def test_file_checksums_catch_size_and_content(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"abc" * 100)
    expected = checksums(tmp_path, ["a.bin"])
    verify_checksums(tmp_path, expected, "kgrec build-graph")
    (tmp_path / "a.bin").write_bytes(b"abd" * 100)
    with pytest.raises(DamagedFileError, match="checksum mismatch"):
        verify_checksums(tmp_path, expected, "kgrec build-graph")
    (tmp_path / "a.bin").write_bytes(b"abc")
    with pytest.raises(DamagedFileError, match="3 bytes instead of 300"):
        verify_checksums(tmp_path, expected, "kgrec build-graph")


def test_only_temporaries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead, alive = 4_194_001, os.getpid()
    for name in (f".art.tmp-{dead}", f".art.old-{dead}", f".art.tmp-{alive}", ".art.tmp-1x"):
        (tmp_path / name).mkdir()
    (tmp_path / f".model.pt.tmp-{dead}").write_bytes(b"half")
    (tmp_path / f".kept.tmp-{dead}").mkdir()
    removed = remove_stale(tmp_path, keep={f".kept.tmp-{dead}"})
    assert removed == sorted([f".art.old-{dead}", f".art.tmp-{dead}", f".model.pt.tmp-{dead}"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".art.tmp-{alive}", ".art.tmp-1x", f".kept.tmp-{dead}"]
    )


def test_private_dir_tightens_an_open_folder(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    private_dir(folder / "a" / "b")
    private_dir(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "a" / "b").stat().st_mode) == 0o700
