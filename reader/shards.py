"""Sentence shard files: tokenized text, one sentence per line.

A corpus is a glob of such files (the fluid and bilm-tf format). Encoding a
shard turns it into one flat int32 id array plus sentence offsets, each
sentence wrapped in `<S>` … `</S>`.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import DataError
from reader.text_file import numbered_lines
from reader.vocab import Vocabulary


def resolve_shards(pattern: str, what: str = "data") -> list[str]:
    """Sorted files matching `pattern`; no match is an error naming the pattern."""
    if not pattern:
        raise DataError(f"no {what} files given (empty glob pattern)")
    files = sorted(p for p in glob.glob(str(Path(pattern).expanduser())) if Path(p).is_file())
    if not files:
        raise DataError(f"no {what} files match '{pattern}'")
    return files


@dataclass
class EncodedShard:
    """Sentences of one shard: sentence k is ids[offsets[k]:offsets[k+1]]."""

    path: str
    ids: np.ndarray  # int32, flat
    offsets: np.ndarray  # int64, len = sentences + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def sentence(self, k: int) -> np.ndarray:
        return self.ids[self.offsets[k] : self.offsets[k + 1]]


def encode_shard(path: str, vocab: Vocabulary) -> EncodedShard:
    """Reads and encodes one shard; a bad line is an error naming file and line."""
    pieces: list[np.ndarray] = []
    lengths = [0]
    for lineno, line in numbered_lines(path, "shard"):
        words = line.split()
        if not words:
            raise DataError(
                f"{path}:{lineno}: empty line (the format is one tokenized sentence per line; "
                "remove blank lines)"
            )
        ids = vocab.encode(words)
        pieces.append(ids)
        lengths.append(len(ids))
    if not pieces:
        raise DataError(f"{path}: empty shard (no sentences)")
    return EncodedShard(path, np.concatenate(pieces), np.cumsum(lengths, dtype=np.int64))
