"""Process-level set-up: threads, device, static mode; the ranks of a distributed job.

The little state that lives outside the program (each rank's carried LSTM
rows) moves between ranks through host-side collectives here. Eager tensors
cannot be created while static mode is on, so the exchange runs under a
dygraph guard (checked on Paddle 3.3.1 with gloo).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass
class RuntimeConfig:
    """The `runtime:` section: where and how wide the programs run."""

    # CPU math threads per process (0: the cores shared among the processes); Paddle alone would use 1
    threads: int = 2
    device: Literal["auto", "cpu", "gpu"] = "auto"  # auto: a card when this Paddle build has CUDA and sees one
    # Also log the training curves' scalars for VisualDL, in RUN_DIR/visualdl (the visualdl extra)
    visualdl: bool = False
    # Keep freed memory for reuse (glibc): no page faults on each step's large buffers; the process keeps its peak size
    keep_memory: bool = True
    # Training's dropout, softmax, layer norm, AdamW: paddle's ops, or compiled (CPU: ours, faster, other masks; c++)
    kernels: Literal["paddle", "compiled"] = "paddle"


@dataclass(frozen=True)
class DistEnv:
    """This process's place in a `paddle.distributed.launch` job (rank 0 of 1 otherwise)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_env_from_launcher() -> DistEnv:
    """Reads the variables `paddle.distributed.launch` sets for each worker."""
    world = int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
    rank = int(os.environ.get("PADDLE_TRAINER_ID", "0"))
    local_rank = int(os.environ.get("PADDLE_LOCAL_RANK", os.environ.get("PADDLE_RANK_IN_NODE", "0")))
    return DistEnv(rank=rank, world=world, local_rank=local_rank)


def set_threads(threads: int, processes: int = 1) -> int:
    """Sets the math thread count; must run before the first program executes.

    Paddle forces OMP_NUM_THREADS=1 at import when it is unset; OpenMP reads it
    when its first parallel region starts, so setting it here still applies.
    `threads=0` divides the machine's cores among `processes` ranks.
    """
    n = threads if threads > 0 else max(1, (os.cpu_count() or 1) // processes)
    os.environ["OMP_NUM_THREADS"] = str(n)
    os.environ["MKL_NUM_THREADS"] = str(n)
    if _amd_cpu():
        # Paddle's MKL takes a slow generic path on AMD processors; this makes
        # it use its AVX2 kernels (measured: fp32 GEMM 56 → 108 GFLOP/s on an
        # EPYC with 2 threads). Read when MKL starts, so still in time here.
        os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    return n


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


def keep_freed_memory() -> bool:
    """Makes glibc keep the memory a program frees for its next allocations.

    The executor runs ops on worker threads, and glibc serves a large block
    there with a fresh `mmap` that it unmaps when the block is freed, so every
    step faulted its large buffers in again page by page (docs/benchmarks.md
    has the figures). One arena, no
    mapped blocks and no trimming keep the pages; the cost is that the process
    holds its peak heap until it exits. Returns False (nothing changed) where
    the C library is not glibc. Call it before the first program runs.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))
    return all(mallopt(param, value) == 1 for param, value in settings)


def serial_cpu_executor() -> None:
    """Makes the executor run a program's ops one after another.

    By default it runs independent ops on several host threads, each of which
    then competes for the same MKL/OpenMP threads; on CPU that made the ELMo
    step 10-20% slower (measured with 2 cores, `bench/elmo_train.py`).
    """
    import paddle

    paddle.set_flags({"FLAGS_new_executor_serial_run": True})


def _amd_cpu() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return "AuthenticAMD" in f.read(4096)
    except OSError:
        return False


@contextlib.contextmanager
def static_mode():
    """Paddle's static mode inside the block, and the process's own mode after it: a library call
    (a pipeline building its program) leaves a user's dygraph code as it found it."""
    import paddle

    dynamic = paddle.in_dynamic_mode()
    paddle.enable_static()
    try:
        yield
    finally:
        if dynamic:
            paddle.disable_static()


def setup(cfg: RuntimeConfig, dist: DistEnv):
    """Threads, static mode and the device of this rank; returns the Paddle place."""
    set_threads(cfg.threads, dist.world)
    if cfg.keep_memory:
        keep_freed_memory()
    import paddle

    if dist.world > 1:
        # Must precede enable_static (checked on Paddle 3.3.1).
        paddle.distributed.init_parallel_env()
    paddle.enable_static()
    use_gpu = cfg.device == "gpu" or (cfg.device == "auto" and paddle.is_compiled_with_cuda()
                                      and paddle.device.cuda.device_count() > 0)
    if not use_gpu:
        serial_cpu_executor()
    from engine.errors import ConfigError

    if cfg.device == "gpu" and not paddle.is_compiled_with_cuda():
        raise ConfigError("runtime.device is 'gpu' but this Paddle build has no CUDA support")
    if cfg.kernels == "compiled" and use_gpu:
        raise ConfigError("runtime.kernels: compiled are CPU kernels, and this run is on a card "
                          "(runtime.device); use runtime.kernels: paddle there")
    return paddle.CUDAPlace(dist.local_rank) if use_gpu else paddle.CPUPlace()


# -- host-side collectives ---------------------------------------------------------


def all_gather_rows(array: np.ndarray, axis: int, world: int) -> np.ndarray:
    """Concatenates every rank's `array` along `axis`, in rank order (on every rank)."""
    if world == 1:
        return array
    import paddle

    with paddle.base.dygraph.guard():
        parts: list = []
        paddle.distributed.all_gather(parts, paddle.to_tensor(np.ascontiguousarray(array)))
        return np.concatenate([p.numpy() for p in parts], axis=axis)


def rank_rows(array: np.ndarray, axis: int, rank: int, world: int) -> np.ndarray:
    """Rank `rank`'s share of a global array: rows rank·n … (rank+1)·n along `axis`."""
    n = array.shape[axis] // world
    return np.take(array, np.arange(rank * n, (rank + 1) * n), axis=axis)
