"""Reading UTF-8 text files line by line, with errors that name the file and line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from engine.errors import DataError


def numbered_lines(path: str | Path, what: str = "file") -> Iterator[tuple[int, str]]:
    """Yields (1-based line number, line without its newline); bad bytes are a DataError naming file:line."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{what} not found: {path}") from None
    with f:
        for lineno, raw in enumerate(f, start=1):
            try:
                yield lineno, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
