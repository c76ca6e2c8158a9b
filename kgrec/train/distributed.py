"""Distributed data parallel training under ``torchrun`` (gloo on CPU, NCCL on CUDA).

``kgrec train`` runs unchanged under ``torchrun``, and ``kgrec train --nproc N`` launches it so
(:func:`launch`). Every process (rank) runs the whole command; :func:`setup` joins the process
group that torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``)
describes, and then:

- the teacher is tuned once, on rank 0, and broadcast (:func:`broadcast`);
- every GNN step cuts the same global batch of ``train.batch_size`` users on every rank (the cut
  sampler is seeded alike and consumed alike), and each rank computes the loss of its
  contiguous share of the rows (:func:`shard`), weighted so that the gradient DDP averages is
  the gradient of the whole batch. The global batch stays ``train.batch_size`` whatever the
  number of processes, and N processes follow the random stream of one: they differ from a
  single process only in the order floating-point sums are taken (an XSimGCL ``cl_weight``
  loss, whose negatives are the other rows of the batch, sees only the rank's share);
- rank 0 validates and broadcasts the metrics, so early stopping decides alike everywhere;
- only rank 0 writes (checkpoint, resume state, log) and reports progress.

Outside torchrun every helper is a no-op for one process.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from kgrec.data.history import Cut, Prefix
from kgrec.errors import KgrecError

T = TypeVar("T")

TIMEOUT = timedelta(hours=12)
"""How long a rank waits in a collective: the others wait while rank 0 tunes the teacher and
validates (torchrun stops every rank when one fails, so a long wait never hangs)."""


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (its environment is set)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device: torch.device) -> torch.device:
    """Join torchrun's process group (NCCL for CUDA, else gloo); this rank's device.

    Idempotent; outside torchrun it does nothing and returns ``device``. On CUDA each rank
    takes the GPU of its ``LOCAL_RANK``.
    """
    if device.type == "cuda" and launched():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise KgrecError(
                f"local rank {local} has no GPU ({torch.cuda.device_count()} here): "
                "start at most one process per GPU (--nproc / --nproc_per_node)"
            )
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    if launched() and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
        atexit.register(teardown)
    return device


def teardown() -> None:
    """Leave the process group (if any)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    """This process's rank (0 outside torchrun)."""
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 outside torchrun)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Whether this is rank 0, the one that writes and reports."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank."""
    if world_size() > 1:
        dist.barrier()


def broadcast(value: T | None) -> T:
    """Rank 0's ``value`` on every rank (any picklable value; other ranks may pass ``None``)."""
    if world_size() == 1:
        return value  # type: ignore[return-value]  # rank 0's own value
    box: list[object] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]


def wrap(module: nn.Module, device: torch.device, find_unused: bool = False) -> nn.Module:
    """``module`` in :class:`DistributedDataParallel` when several ranks train, else itself.

    ``find_unused``: some parameters get no gradient (no KG: entity and relation vectors).
    """
    if world_size() == 1:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused)


def shard(cut: Cut, rank: int = 0, world_size: int = 1) -> tuple[Cut, float]:
    """Rank ``rank``'s contiguous share of the rows of ``cut`` and its loss weight.

    Row ``b`` of ``B`` goes to rank ``b // ceil(B / world_size)``. The weight
    ``rows * world_size / B`` makes the average over ranks of ``weight * mean loss of the
    share`` the mean loss of the whole batch (what DDP's gradient averaging needs). A rank
    left without rows (``B < world_size``) gets the first row with weight ``0``, so that it
    still takes part in the step.
    """
    total = cut.prefix.num_rows
    if world_size == 1:
        return cut, 1.0
    size = -(-total // world_size)
    lo, hi = min(rank * size, total), min((rank + 1) * size, total)
    weight = (hi - lo) * world_size / total
    if hi == lo:
        lo, hi = 0, 1
    prefix = cut.prefix
    keep = (prefix.row >= lo) & (prefix.row < hi)
    target = (cut.target_row >= lo) & (cut.target_row < hi)
    return (
        Cut(
            users=cut.users[lo:hi],
            prefix=Prefix(prefix.row[keep] - lo, prefix.item[keep], prefix.age[keep], hi - lo),
            target_row=cut.target_row[target] - lo,
            target_item=cut.target_item[target],
        ),
        weight,
    )


def launch(nproc: int, args: Sequence[str]) -> int:
    """Run ``python -m kgrec <args>`` as ``nproc`` processes under torchrun on this machine
    (``--standalone``); torchrun's exit code. ``OMP_NUM_THREADS`` defaults to the CPU cores
    shared out between the processes."""
    if launched():
        raise KgrecError("--nproc was given inside torchrun: leave it out there")
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "kgrec",
        *args,
    ]
    return subprocess.run(command, env=env, check=False).returncode
