"""Training checkpoints: atomic, complete or absent, the last N kept.

A checkpoint `step-00001200/` holds one tensor file per persistable variable
of the training program (parameters, optimizer accumulators, learning rate),
`carry.npz` (state carried between batches, e.g. LSTM states),
`trainer_state.json` (step, reader position, counters) and whatever the job
adds to make the directory self-describing (model config, vocabulary).

It is written with `engine.atomic.atomic_directory`, so a run killed in the
middle of a save leaves the previous checkpoint as the latest complete one.
`manifest.json` lists every other file with its size and CRC-32, so a file
damaged after the save (a truncated copy, flipped bits on a disk) is found
before a resume trains on it: `CheckpointManager.intact` skips such a
checkpoint for the newest intact one, and `python -m engine.verify DIR`
checks one by hand. Checkpoints written before the manifest load unchecked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from engine.atomic import atomic_directory
from engine.errors import CheckpointError

STATE_FILE = "trainer_state.json"
CARRY_FILE = "carry.npz"
MANIFEST_FILE = "manifest.json"
DAMAGED_SUFFIX = ".damaged"  # a checkpoint `intact` set aside: kept for inspection, never resumed from
_NAME = re.compile(r"^step-(\d{8})$")
_CHUNK = 16 << 20


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

    def intact(self, set_aside: bool = True) -> tuple[Path | None, list[str]]:
        """(the newest checkpoint whose files match its manifest, notes on the newer ones that do not).

        With `set_aside` (the run's main process) a damaged checkpoint is
        renamed `step-N.damaged`: out of the way of the run's next saves, kept
        for whoever wants to look at it.
        """
        notes = []
        for path in reversed(self.complete()):
            problems = verify(path)
            if not problems:
                return path, notes
            aside = path.with_name(path.name + DAMAGED_SUFFIX)
            if set_aside:
                shutil.rmtree(aside, ignore_errors=True)
                path.rename(aside)
            more = f"; {len(problems) - 1} more" if problems[1:] else ""
            notes.append(f"{path.name} is damaged ({problems[0]}{more}); set aside as {aside.name}")
        return None, notes

    def save(self, step: int, write_files: Callable[[Path], None], state: dict,
             carry: dict[str, np.ndarray]) -> Path:
        """Writes checkpoint `step`: `write_files(tmp_dir)` adds variables and job files."""
        final = self.root / f"step-{step:08d}"
        with atomic_directory(final) as tmp:
            write_files(tmp)
            with open(tmp / CARRY_FILE, "wb") as f:
                np.savez(f, **carry)
            write_manifest(tmp)
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


def write_manifest(directory: Path) -> None:
    """Lists every file of a checkpoint being written (but the state file) with its size and CRC-32."""
    paths = [p for p in sorted(directory.rglob("*"))
             if p.is_file() and p.relative_to(directory).as_posix() not in (MANIFEST_FILE, STATE_FILE)]
    files = {p.relative_to(directory).as_posix(): {"size": p.stat().st_size, "crc32": crc}
             for p, crc in zip(paths, _crc32s(paths))}
    (directory / MANIFEST_FILE).write_text(json.dumps({"files": files}, indent=1))


def verify(checkpoint: str | Path) -> list[str]:
    """What is wrong with a checkpoint's files against its manifest, one line each ([]: intact; a checkpoint
    without a manifest, written before there was one, is taken as intact)."""
    checkpoint = Path(checkpoint)
    if not (checkpoint / STATE_FILE).is_file():
        return [f"no {STATE_FILE}: the save did not finish"]
    try:
        json.loads((checkpoint / STATE_FILE).read_text())
    except (OSError, ValueError) as e:
        return [f"{STATE_FILE} is unreadable ({e})"]
    if not (checkpoint / MANIFEST_FILE).is_file():
        return []
    try:
        files = json.loads((checkpoint / MANIFEST_FILE).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [f"{MANIFEST_FILE} is unreadable ({e})"]
    problems, sized = [], []
    for name, want in files.items():
        path = checkpoint / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif path.stat().st_size != want["size"]:
            problems.append(f"{name} has {path.stat().st_size:,} bytes, the manifest {want['size']:,}")
        else:
            sized.append(name)
    for name, crc in zip(sized, _crc32s([checkpoint / n for n in sized])):
        if crc != files[name]["crc32"]:
            problems.append(f"{name} has other bytes than were saved (CRC-32 mismatch)")
    return problems


def _crc32s(paths: list[Path]) -> list[int]:
    """The files' CRC-32s, on every core (zlib lets go of the interpreter while it sums)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(_crc32, paths))


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            crc = zlib.crc32(block, crc)
    return crc
