"""Plain tokenized text: one whitespace-tokenized sentence per line, read in batches."""

from __future__ import annotations

from pathlib import Path

from engine.errors import DataError
from reader.text_file import numbered_lines


def read_batches(path: str | Path, batch_size: int):
    """Yields (first line index, [tokens per line]) in batches of consecutive lines."""
    batch, start = [], 0
    for lineno, line in numbered_lines(path, "input file"):
        words = line.split()
        if not words:
            raise DataError(f"{path}:{lineno}: empty line (one tokenized sentence per line)")
        batch.append(words)
        if len(batch) == batch_size:
            yield start, batch
            start, batch = start + len(batch), []
    if batch:
        yield start, batch
