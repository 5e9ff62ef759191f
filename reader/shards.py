"""Sentence shard files: tokenized text, one sentence per line.

A corpus is a glob of such files (the fluid and bilm-tf format). Encoding a
shard turns it into one flat int32 id array plus sentence offsets, each
sentence wrapped in `<S>` … `</S>`. For character models it also keeps every
token's spelling (out-of-vocabulary words included): one character row per
distinct word of the shard, and per token the index of its row.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import DataError
from reader.chars import Spelling
from reader.text_file import numbered_lines
from reader.vocab import BOS, EOS, Vocabulary


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
    spelling: np.ndarray | None = None  # int32 per token: its row of `chars`
    chars: np.ndarray | None = None  # [distinct words, C] uint16 character ids
    blank_lines: int = 0  # skipped

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def sentence(self, k: int) -> np.ndarray:
        """Word ids [n] of sentence k; with spellings [n, 1 + C]: the word id, then its characters."""
        span = slice(self.offsets[k], self.offsets[k + 1])
        if self.chars is None:
            return self.ids[span]
        return np.concatenate([self.ids[span, None], self.chars[self.spelling[span]].astype(np.int32)], axis=1)


class _Speller:
    """Distinct words of a shard → rows of character ids (rows 0 and 1: `<S>`, `</S>`)."""

    def __init__(self):
        self.rows: dict[str, int] = {BOS: 0, EOS: 1}

    def sentence(self, words: list[str]) -> np.ndarray:
        rows = self.rows
        return np.array([0, *(rows.setdefault(w, len(rows)) for w in words), 1], np.int32)

    def table(self, spelling: Spelling) -> np.ndarray:
        return spelling.words(list(self.rows)).astype(np.uint16)


def encode_shard(path: str, vocab: Vocabulary, spelling: Spelling | None = None, split=str.split) -> EncodedShard:
    """Reads and encodes one shard (with each word's `spelling` too, for character models).

    `split` cuts a line into words (whitespace; a `reader.segment.Segmenter`
    for raw text). Blank (or whitespace-only) lines are skipped and counted (the fluid
    reader made each one a sentence without words, `<S> </S>`). A bad line is
    an error naming file and line.
    """
    pieces: list[np.ndarray] = []
    spellings: list[np.ndarray] = []
    speller = _Speller() if spelling else None
    # ELMoForManyLangs' models read words cut to what they spell (`reader.chars.word_char_ids`).
    keep = spelling.max_chars - 2 if spelling and spelling.characters else None
    lengths = [0]
    blank = 0
    for _, line in numbered_lines(path, "shard"):
        words = split(line)
        if not words:  # real corpora have a few (the fluid release's sample has 10)
            blank += 1
            continue
        if keep:
            words = [w[:keep] for w in words]
        ids = vocab.encode(words)
        pieces.append(ids)
        lengths.append(len(ids))
        if speller is not None:
            spellings.append(speller.sentence(words))
    if not pieces:
        raise DataError(f"{path}: empty shard (no sentences)")
    shard = EncodedShard(path, np.concatenate(pieces), np.cumsum(lengths, dtype=np.int64), blank_lines=blank)
    if speller is not None:
        shard.spelling, shard.chars = np.concatenate(spellings), speller.table(spelling)
    return shard
