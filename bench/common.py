"""What every benchmark shares: threads, timing, the machine's GEMM rate, reporting."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--threads", type=int, default=2, help="math threads for both sides")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions (after warm-up)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", help="also write the ratios to this JSON file (what bench/chart.py draws)")
    p.add_argument("--default-malloc", action="store_true",
                   help="leave glibc's allocator at its defaults (both sides) instead of the engine's setting")
    return p


class Results:
    """The ratios a run prints, kept for `--json`: {benchmark, cpu, threads, ratios: {label: {value, target}}}."""

    def __init__(self, benchmark: str, args):
        self.path = args.json
        self.data = {"benchmark": benchmark, "cpu": cpu_model(), "threads": args.threads,
                     "date": time.strftime("%Y-%m-%d"), "ratios": {}}

    def ratio(self, label: str, value: float, target: float | None = None, title: str | None = None) -> None:
        """Prints `label: value` (the line the README quotes) and keeps it, with a `title` for the chart."""
        print(f"{label}: {value:.2f}")
        self.data["ratios"][label] = {"value": round(value, 4), "target": target, "title": title or label}

    def save(self) -> None:
        if self.path:
            Path(self.path).write_text(json.dumps(self.data, indent=1))
            print(f"wrote {self.path}")


def set_threads(threads: int, keep_memory: bool = True, announce: bool = True) -> None:
    """Same process settings for Paddle (OpenMP/MKL) and torch; call before either runs anything.

    Uses the engine's own set-up, so the benchmark runs Paddle as training
    does. The allocator setting (`engine.runtime.keep_freed_memory`) is
    process-wide, so the references in this process get it too: it makes
    torch's steps faster as well (HF's fine-tuning step more than ours), and
    a reference given the better allocator is the stronger one.
    """
    from engine.runtime import keep_freed_memory, serial_cpu_executor
    from engine.runtime import set_threads as engine_threads

    engine_threads(threads)
    kept = keep_memory and keep_freed_memory()
    if announce:
        print(f"every side: {threads} threads, freed memory "
              f"{'kept for reuse (engine.runtime.keep_freed_memory)' if kept else 'returned per glibc defaults'}")
    os.environ.setdefault("GLOG_minloglevel", "2")
    serial_cpu_executor()


def torch_threads(threads: int):
    import torch

    torch.set_num_threads(threads)
    return torch


def measure(fn: Callable[[], object], repeats: int, warmup: int) -> dict[str, float]:
    """Seconds per call: median, min, max over `repeats` after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def measure_all(fns: dict[str, Callable[[], object]], repeats: int, warmup: int,
                settle: float = 0.3) -> dict[str, dict[str, float]]:
    """`measure` of each call, interleaved: every round runs each once, in an order rotated each round.

    On a shared machine the speed drifts by tens of percent within a minute;
    timed one after another, two sides of a ratio would see different
    machines. Interleaved, each side's median draws on the same minutes.
    Each call waits `settle` seconds first: the side before leaves its
    threads spinning for a while (Intel OpenMP, which Paddle's MKL uses, for
    200 ms), on the cores the next side needs.
    """
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            time.sleep(settle)
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return {name: {"median": statistics.median(t), "min": min(t), "max": max(t)} for name, t in times.items()}


def gemm_rate(size: int = 2048, repeats: int = 5) -> float:
    """The machine's fp32 GEMM rate (FLOP/s) with numpy, measured now."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    t = measure(lambda: a @ a, repeats, 1)
    return 2 * size ** 3 / t["median"]


def line(name: str, seconds: dict, unit_count: float, unit: str) -> str:
    rate = unit_count / seconds["median"]
    return (f"{name:<38} {seconds['median'] * 1000:9.1f} ms (min {seconds['min'] * 1000:.1f}, "
            f"max {seconds['max'] * 1000:.1f})  {rate:12,.0f} {unit}/s")


def ceiling_share(flops: float, seconds: dict, rate: float) -> str:
    """How much of the machine's GEMM rate a run of `flops` matrix-product FLOPs used."""
    return f"  {100 * flops / rate / seconds['median']:.0f}% of ceiling"


def cpu_model() -> str:
    """The CPU's model name: the machine kind varies, so every figure is printed beside it."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def onnx_backend() -> bool:
    """Whether the ONNX Runtime serving path can run here (the [onnx] extra); says so when not."""
    try:
        import onnxruntime  # noqa: F401
        import paddle2onnx  # noqa: F401
    except ImportError:
        print("ONNX Runtime path skipped: paddle2onnx and onnxruntime are not installed (pip install -e .[onnx])")
        return False
    return True
