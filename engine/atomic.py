"""Directories and files that appear complete or not at all.

Everything is written into a hidden sibling `.NAME.partial/`, every file and
the directory are fsynced, then it is renamed into place. An existing
directory of that name is first renamed aside and removed only after the
swap, so there is no moment without a complete copy on disk.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.errors import storage_error


@contextmanager
def atomic_directory(final: str | Path, concurrent: bool = False,
                     keep_existing: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yields a temporary directory that replaces `final` when the block succeeds.

    `concurrent`: other processes may build the same directory at the same
    time (two ranks building a corpus), so the temporary names are unique per
    process and call. `keep_existing(final)`: checked before the swap; when it
    says a complete `final` is already there, the new copy is discarded.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = _sibling(final, "partial", concurrent), _sibling(final, "old", concurrent)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        yield tmp
        if keep_existing is not None and keep_existing(final):
            shutil.rmtree(tmp, ignore_errors=True)
            return
        for directory, _, files in os.walk(tmp):
            for name in files:
                fsync_file(Path(directory, name))
            fsync_dir(Path(directory))
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        _raise_storage_error(exc, final)
        raise
    if final.exists():
        # Directories cannot be renamed over non-empty ones: swap, then delete.
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_entries(directory: str | Path) -> Iterator[Path]:
    """Yields a staging directory whose entries (files and directories) each replace the entry of that name
    in `directory` when the block succeeds: a step that writes several outputs beside other files (a run's
    export beside its checkpoints) leaves each output whole or as it was, and on failure nothing new."""
    directory = Path(directory)
    with atomic_directory(directory / ".staging") as staging:
        yield staging
    staged = directory / ".staging"
    try:
        for entry in sorted(staged.iterdir()):
            final, old = directory / entry.name, _sibling(directory / entry.name, "old", False)
            if final.is_dir() and entry.is_dir():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
            elif final.is_dir():
                shutil.rmtree(final)
            os.replace(entry, final)
            shutil.rmtree(old, ignore_errors=True)
        fsync_dir(directory)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _sibling(final: Path, tag: str, unique: bool) -> Path:
    # Hidden, so that nobody takes it for the real thing.
    suffix = f"-{os.getpid()}-{secrets.token_hex(4)}" if unique else ""
    return final.with_name(f".{final.name}.{tag}{suffix}")


@contextmanager
def atomic_file(final: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside `final`; it becomes `final` when the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.partial")
    try:
        yield tmp
        fsync_file(tmp)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        _raise_storage_error(exc, final)
        raise
    os.replace(tmp, final)
    fsync_dir(final.parent)


def _raise_storage_error(exc: BaseException, final: Path) -> None:
    """A failed write of `final` (nothing of it left behind) as one line naming it; other errors pass."""
    error = storage_error(exc, final, "nothing of it was left behind")
    if error is not None:
        raise error from None


def fsync_file(path: Path) -> None:
    """Flushes a written file's bytes to the disk."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    """Flushes a directory's entries (a rename into it) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
