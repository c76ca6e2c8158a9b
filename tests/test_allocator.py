"""keep_freed_memory: freed blocks of several MiB are reused without page faults."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

MEASURE = """
import json, resource, torch
from kgrec.allocator import keep_freed_memory

def faults(n=20):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        x = torch.ones(2_000_000)  # 8 MB, above glibc's default mmap threshold
        del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults(2)
default = faults()
applied = keep_freed_memory()
faults(2)
print(json.dumps({"applied": applied, "default": default, "kept": faults()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_freed_tensors_are_reused_without_page_faults() -> None:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE], capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["applied"] is True
    # by default freed 8 MB blocks go back to the system (munmap or heap trim) and are
    # faulted in again (up to ~2,000 faults of 4 KiB pages each)
    assert result["default"] > 2_000
    assert result["kept"] < result["default"] / 10
