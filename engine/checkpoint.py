"""Training checkpoints: atomic, complete or absent, the last N kept.

A checkpoint `step-00001200/` holds one tensor file per persistable variable
of the training program (parameters, optimizer accumulators, learning rate),
`carry.npz` (state carried between batches, e.g. LSTM states),
`trainer_state.json` (step, reader position, counters) and whatever the job
adds to make the directory self-describing (model config, vocabulary).

It is written with `engine.atomic.atomic_directory`, so a run killed in the
middle of a save leaves the previous checkpoint as the latest complete one.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.atomic import atomic_directory
from engine.errors import CheckpointError

STATE_FILE = "trainer_state.json"
CARRY_FILE = "carry.npz"
_NAME = re.compile(r"^step-(\d{8})$")


class CheckpointManager:
    """Lists, writes and prunes the checkpoints under `root`."""

    def __init__(self, root: str | Path, keep: int = 3):
        self.root = Path(root)
        self.keep = keep

    def complete(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            match = _NAME.match(path.name)
            if match and (path / STATE_FILE).is_file():
                found.append((int(match.group(1)), path))
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        done = self.complete()
        return done[-1] if done else None

    def save(self, step: int, write_files: Callable[[Path], None], state: dict,
             carry: dict[str, np.ndarray]) -> Path:
        """Writes checkpoint `step`: `write_files(tmp_dir)` adds variables and job files."""
        final = self.root / f"step-{step:08d}"
        with atomic_directory(final) as tmp:
            write_files(tmp)
            with open(tmp / CARRY_FILE, "wb") as f:
                np.savez(f, **carry)
            # Written last: a directory with a state file is complete.
            (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))
        self._prune()
        return final

    def _prune(self) -> None:
        done = self.complete()
        for path in done[: max(0, len(done) - self.keep)]:
            shutil.rmtree(path, ignore_errors=True)
        for path in [*self.root.glob(".step-*.partial"), *self.root.glob(".step-*.old")]:
            shutil.rmtree(path, ignore_errors=True)


def read_state(checkpoint: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(trainer state, carried arrays) of a checkpoint."""
    checkpoint = Path(checkpoint)
    try:
        state = json.loads((checkpoint / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{checkpoint}: unreadable {STATE_FILE}: {exc}") from None
    carry = {}
    if (checkpoint / CARRY_FILE).is_file():
        try:
            with np.load(checkpoint / CARRY_FILE, allow_pickle=False) as data:
                carry = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{checkpoint / CARRY_FILE}: unreadable: {exc}") from None
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"{checkpoint / STATE_FILE}: no 'step' in the trainer state")
    return state, carry
