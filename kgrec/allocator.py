"""Keep freed CPU memory in the process during training (glibc ``mallopt``).

A training step on the CPU allocates and frees the same few tensors of several MiB again and
again (messages ``[E, d]``, logits ``[B, I]``, their gradients). glibc serves blocks above its
mmap threshold with a fresh ``mmap`` and gives freed heap tops back to the system, so each
step faults in again every 4 KiB page it touches. Raising the mmap threshold to its maximum
(32 MiB on 64-bit) and the trim threshold far above it keeps freed blocks in the heap, where
the next step reuses them. Measured on an ml-100k GNN step (1 thread, 2 runs each, same
load): 8,567 / 6,842 → 226 / 238 page faults per step, 0.348 / 0.318 → 0.299 / 0.283 CPU
seconds per step (about 12% less). The cost: the process keeps its peak heap until exit.

:func:`keep_freed_memory` is called by :func:`kgrec.train.trainer.train`; elsewhere (other C
libraries, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 2**20
"""glibc's largest accepted mmap threshold on 64-bit (``HEAP_MAX_SIZE / 2``)."""
TRIM_THRESHOLD = 2**31 - 1
"""Free heap top kept before glibc returns it (the largest ``int``: 2 GiB)."""


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds (see the module docstring); once per process.

    Returns:
        Whether both settings were applied (``False`` without glibc).
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
