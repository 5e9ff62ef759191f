"""Directories and files that appear complete or not at all.

Everything is written into a hidden sibling `.NAME.partial/`, every file and
the directory are fsynced, then it is renamed into place. An existing
directory of that name is first renamed aside and removed only after the
swap, so there is no moment without a complete copy on disk.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_directory(final: str | Path) -> Iterator[Path]:
    """Yields a temporary directory that replaces `final` when the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for path in tmp.iterdir():
        if path.is_file():
            _fsync_file(path)
    _fsync_dir(tmp)
    old = final.with_name(f".{final.name}.old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_file(final: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside `final`; it becomes `final` when the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.partial")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_file(tmp)
    os.replace(tmp, final)
    _fsync_dir(final.parent)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
