"""Training progress: a progress bar, periodic log lines, and a JSON-lines log.

Only rank 0 reports; tokens/s counts the tokens of all ranks.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


class ProgressLog:
    """Accumulates per-step numbers and reports them every `every` steps."""

    def __init__(self, log_file: Path | None, total_steps: int, start_step: int,
                 every: int, enabled: bool = True, metrics: Callable[[float], dict] | None = None,
                 sink=None):
        """`metrics(mean loss)`: figures logged beside the loss (e.g. perplexity); `sink(record)`
        receives every JSON record too (e.g. `engine.plot.VisualDLWriter`; closed with the log)."""
        self.enabled = enabled
        self.sink = sink if enabled else None
        self.metrics = metrics or (lambda loss: {})
        self.every = max(1, every)
        self.total = total_steps
        if enabled and log_file:
            _drop_records_after(log_file, start_step)
        self._file = open(log_file, "a") if (enabled and log_file) else None
        self._bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True,
                         disable=not enabled or not sys.stderr.isatty(), leave=False)
        self._start_step = start_step
        self._t0 = time.perf_counter()
        self._window_t0 = self._t0
        self._reset_window()

    def _reset_window(self):
        self._loss_sum = 0.0
        self._steps = 0
        self._tokens = 0

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def step(self, step: int, loss: float, tokens: int) -> None:
        """Records the step just finished (`step` counts finished steps)."""
        self._loss_sum += loss
        self._steps += 1
        self._tokens += tokens
        self._bar.update(1)
        if step % self.every == 0 or step == self.total:
            self._report(step)

    def _report(self, step: int) -> None:
        now = time.perf_counter()
        elapsed = now - self._t0
        window = max(now - self._window_t0, 1e-9)
        loss = self._loss_sum / max(1, self._steps)
        done = step - self._start_step
        eta = elapsed / max(1, done) * (self.total - step)
        extra = self.metrics(loss)
        record = {"step": step, "loss": loss, **extra, "tokens_per_s": self._tokens / window,
                  "elapsed_s": round(elapsed, 1), "eta_s": round(eta, 1)}
        shown = "".join(f" | {name} {value:.2f}" for name, value in extra.items())
        self.write(f"step {step}/{self.total} | loss {loss:.4f}{shown} | "
                   f"{record['tokens_per_s']:,.0f} tok/s | elapsed {format_duration(elapsed)} | "
                   f"eta {format_duration(eta)}", record)
        self._window_t0 = now
        self._reset_window()

    def write(self, line: str, record: dict | None = None) -> None:
        """Prints a line (above the progress bar) and appends `record` to the JSON log."""
        if not self.enabled:
            return
        tqdm.write(line, file=sys.stdout)
        sys.stdout.flush()
        if record is not None and self._file:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        if record is not None and self.sink is not None:
            self.sink(record)

    def close(self) -> None:
        self._bar.close()
        if self._file:
            self._file.close()
        if self.sink is not None:
            self.sink.close()


def _drop_records_after(log_file: Path, step: int) -> None:
    """A resumed run repeats the steps after its checkpoint: forget their old records."""
    if not log_file.is_file():
        return
    kept = [line for line in log_file.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    log_file.write_text("".join(line + "\n" for line in kept))
