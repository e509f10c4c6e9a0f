"""Data-parallel training under ``torchrun --nproc_per_node N`` (DDP).

Launched by torchrun, every process reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and joins
one process group: gloo on CPU, NCCL on CUDA (one GPU per local rank). Each rank trains
on its shard of every epoch's permutation with batch ``batch_size // world``, so the
global batch is the configured one; DDP averages gradients; validation runs on the full
valid split on every rank (identical results, identical early-stopping decisions); rank 0
alone writes files. Without torchrun all of this is a no-op.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def launched() -> bool:
    """True when started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return rank_world()[0] == 0


def init(device: str) -> str:
    """Join the process group when launched by torchrun; returns the device to use.

    Args:
        device: ``cpu`` or ``cuda``; on CUDA each process takes GPU ``LOCAL_RANK``.
    """
    if not launched() or dist.is_initialized():
        return device
    backend = "nccl" if device == "cuda" else "gloo"
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    dist.init_process_group(backend=backend)
    return device


def wrap(module: nn.Module | None, find_unused: bool = False):
    """``module`` in DistributedDataParallel when a process group is up, else unchanged."""
    if module is None or not (dist.is_available() and dist.is_initialized()):
        return module
    dev = next(module.parameters()).device
    ids = [dev.index] if dev.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids,
                                               find_unused_parameters=find_unused)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
