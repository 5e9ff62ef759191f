"""The reader against the trainer: batches/s produced vs consumed, and the executor's wait in a real run.

    python bench/reader.py [--batch 128 --steps 20 --train-steps 40 --threads 2]

1. The LM reader alone (worker process, shard-encoding pool) on the built-in
   corpus: batches/s at the fluid defaults (128 × 20).
2. The training step of `configs/elmo.yaml`: steps/s (the consumption rate).
3. A real run of that config through the engine: the share of wall time the
   executor spent waiting for data (the trainer logs it).
Last line: `ratio: X` (reader batches/s over trainer steps/s).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Results, cpu_model, parser, set_threads

ROOT = Path(__file__).resolve().parents[1]


def main():
    p = parser(__doc__)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batches", type=int, default=300, help="batches read for the reader's rate")
    p.add_argument("--train-steps", type=int, default=40)
    a = p.parse_args()
    results = Results("reader", a)
    set_threads(a.threads, keep_memory=not a.default_malloc)
    from reader.default_corpus import build_default_corpus
    from reader.lm import LMStream
    from reader.prefetch import Prefetcher
    from reader.shards import resolve_shards

    with tempfile.TemporaryDirectory() as tmp:
        corpus = build_default_corpus(Path(tmp) / "corpus")
        stream = LMStream(tuple(resolve_shards(corpus.train_glob)), str(corpus.vocab), a.batch, a.steps,
                          shuffle=True, loop=True, num_workers=1)
        with Prefetcher(stream, None, capacity=64) as batches:
            next(batches)  # start-up excluded
            start = time.perf_counter()
            for _ in range(a.batches):
                next(batches)
            reader_rate = a.batches / (time.perf_counter() - start)
        print(f"{cpu_model()} | threads {a.threads} | reader: {reader_rate:,.0f} batches/s of {a.batch} × {a.steps} "
              "tokens")
        log = train_log(a, Path(tmp))
    step_rate = _steps_per_second(log)
    waited = re.search(r"the executor waited ([\d.]+) s for data \(([\d.]+)% of the run\)", log)
    print(f"trainer (configs/elmo.yaml): {step_rate:,.2f} steps/s")
    print(f"executor waiting for data in a {a.train_steps}-step run: {waited.group(1)} s "
          f"({waited.group(2)}% of the run)")
    print(f"ratio: {reader_rate / step_rate:.0f}")
    results.data["ratios"]["reader over trainer"] = {"value": round(reader_rate / step_rate, 1), "target": None}
    results.save()


def train_log(a, tmp: Path) -> str:
    command = [sys.executable, "-m", "bilm", "train", "--config", "configs/elmo.yaml",
               "-o", f"data.builtin_dir={tmp / 'corpus'}", "-o", f"train.output_dir={tmp / 'run'}",
               "-o", f"train.max_steps={a.train_steps}", "-o", f"train.log_every={a.train_steps // 2}",
               "-o", "train.eval_every=0", "-o", f"runtime.threads={a.threads}"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout


def _steps_per_second(log: str) -> float:
    """From the last progress line: tokens/s over the elmo.yaml batch (32 × 20 tokens)."""
    rates = [float(m.replace(",", "")) for m in re.findall(r"\| ([\d,]+) tok/s", log)]
    return rates[-1] / (32 * 20)


if __name__ == "__main__":
    main()
