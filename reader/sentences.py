"""Plain tokenized text: one whitespace-tokenized sentence per line, read in batches."""

from __future__ import annotations

from pathlib import Path

from engine.errors import DataError


def read_batches(path: str | Path, batch_size: int):
    """Yields (first line index, [tokens per line]) in batches of consecutive lines."""
    batch, start = [], 0
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"input file not found: {path}") from None
    with f:
        for lineno, raw in enumerate(f, start=1):
            try:
                words = raw.decode("utf-8").split()
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
            if not words:
                raise DataError(f"{path}:{lineno}: empty line (one tokenized sentence per line)")
            batch.append(words)
            if len(batch) == batch_size:
                yield start, batch
                start, batch = start + len(batch), []
    if batch:
        yield start, batch
