"""Words → character ids, the input of character-level ELMo (bilm-tf's encoding).

A token becomes `max_chars` ids: beginning-of-word, its UTF-8 bytes (at most
`max_chars - 2`; longer words are truncated), end-of-word, then padding.
`<S>` and `</S>` have their own spellings. Every id is shifted by +1 so that
0 can mark a padded token position (a row of zeros), as bilm-tf's batcher
does; the values here are what the programs are fed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reader.vocab import BOS, EOS

MAX_CHARS = 50  # bilm-tf's max_characters_per_token
NUM_CHARS = 261  # 256 bytes + <S>, </S>, begin/end of word, padding (before the +1 shift)
_BOS_CHAR, _EOS_CHAR, _BOW, _EOW, _PAD = 256, 257, 258, 259, 260


def _special(char: int, max_chars: int) -> np.ndarray:
    row = np.full(max_chars, _PAD + 1, np.int64)
    row[:3] = (_BOW + 1, char + 1, _EOW + 1)
    return row


def boundary_char_ids(max_chars: int = MAX_CHARS) -> tuple[np.ndarray, np.ndarray]:
    """The character rows of `<S>` and `</S>` ([max_chars] int64 each)."""
    return _special(_BOS_CHAR, max_chars), _special(_EOS_CHAR, max_chars)


def char_ids(words: Sequence[str], max_chars: int = MAX_CHARS) -> np.ndarray:
    """[len(words), max_chars] int64 character ids (shifted by +1; see the module doc)."""
    if max_chars < 3:
        raise ValueError(f"max_chars must be at least 3, got {max_chars}")
    spelled = [w.encode("utf-8")[: max_chars - 2] for w in words]
    n = len(spelled)
    lengths = np.fromiter(map(len, spelled), np.int64, count=n)
    out = np.full((n, max_chars), _PAD + 1, np.int64)
    out[:, 0] = _BOW + 1
    if lengths.sum():
        flat = np.frombuffer(b"".join(spelled), np.uint8).astype(np.int64) + 1
        rows = np.repeat(np.arange(n), lengths)
        starts = np.cumsum(lengths) - lengths
        cols = 1 + np.arange(len(flat)) - np.repeat(starts, lengths)
        out[rows, cols] = flat
    out[np.arange(n), lengths + 1] = _EOW + 1
    bos, eos = boundary_char_ids(max_chars)
    for i, w in enumerate(words):
        if w == BOS:
            out[i] = bos
        elif w == EOS:
            out[i] = eos
    return out


def padded_char_ids(sentences: Sequence[Sequence[str]], max_chars: int = MAX_CHARS) -> np.ndarray:
    """[n, longest, max_chars] int64 for a batch of sentences; padded tokens are all 0."""
    n = len(sentences)
    longest = max((len(s) for s in sentences), default=0)
    out = np.zeros((n, max(1, longest), max_chars), np.int64)
    for i, words in enumerate(sentences):
        out[i, : len(words)] = char_ids(words, max_chars)
    return out
