"""Words → character ids, the input of character-level ELMo.

Two spellings (`Spelling`):

- **bytes** (bilm-tf's): a token becomes `max_chars` ids: beginning-of-word,
  its UTF-8 bytes (at most `max_chars - 2`; longer words are truncated),
  end-of-word, then padding. `<S>` and `</S>` have their own spellings. Every
  id is shifted by +1 so that 0 can mark a padded token position (a row of
  zeros), as bilm-tf's batcher does; the values here are what the programs
  are fed.
- **characters** (ELMoForManyLangs'): one id per Unicode character from the
  model's character vocabulary, whose first six entries are the specials
  `CHARACTER_SPECIALS` (`<pad>` is 0, so a padded token position is all
  `<pad>`, as the package pads); a word becomes `<bow>`, its first
  `max_chars - 2` characters (unknown ones `<oov>`), `<eow>`, then `<pad>`;
  `<S>` and `</S>` are spelled `<bow> <bos> <eow>` and `<bow> <eos> <eow>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import DataError
from reader.vocab import BOS, EOS

# The first entries of a character vocabulary, in this order.
CHARACTER_SPECIALS = ("<pad>", "<bow>", "<eow>", "<oov>", "<bos>", "<eos>")
_PAD_ID, _BOW_ID, _EOW_ID, _OOV_ID, _BOS_ID, _EOS_ID = range(len(CHARACTER_SPECIALS))

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


@dataclass(frozen=True)
class Spelling:
    """How a biLM spells words (see the module doc): `characters` empty for bilm-tf's bytes, else the
    model's character vocabulary (`CHARACTER_SPECIALS` first)."""

    max_chars: int = MAX_CHARS
    characters: tuple[str, ...] = ()

    def __post_init__(self):
        if self.characters and tuple(self.characters[:len(CHARACTER_SPECIALS)]) != CHARACTER_SPECIALS:
            raise DataError(f"a character vocabulary must start with {', '.join(CHARACTER_SPECIALS)}")
        if len(self.characters) > 65535:  # the training shards keep spellings as uint16
            raise DataError(f"a character vocabulary of {len(self.characters):,} entries is over 65,535")
        object.__setattr__(self, "_ids", {c: i for i, c in enumerate(self.characters)})

    @property
    def num_chars(self) -> int:
        """Rows of the character table the ids index (bytes: bilm-tf's 261, before the zero row)."""
        return len(self.characters) or NUM_CHARS

    def words(self, words: Sequence[str]) -> np.ndarray:
        """[len(words), max_chars] int64 ids; `<S>` and `</S>` get their own spellings."""
        if not self.characters:
            return char_ids(words, self.max_chars)
        out = np.full((len(words), self.max_chars), _PAD_ID, np.int64)
        out[:, 0] = _BOW_ID
        ids, keep = self._ids, self.max_chars - 2
        for i, word in enumerate(words):
            if word in (BOS, EOS):
                out[i, 1:3] = (_BOS_ID if word == BOS else _EOS_ID, _EOW_ID)
                continue
            chars = word[:keep]
            out[i, 1:len(chars) + 1] = [ids.get(c, _OOV_ID) for c in chars]
            out[i, len(chars) + 1] = _EOW_ID
        return out

    def sentences(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        """[n, longest, max_chars] int64 for a batch of sentences; padded token positions are all 0."""
        if not self.characters:
            return padded_char_ids(sentences, self.max_chars)
        out = np.zeros((len(sentences), max([1, *map(len, sentences)]), self.max_chars), np.int64)
        for i, words in enumerate(sentences):
            if words:
                out[i, : len(words)] = self.words(words)
        return out

    def boundaries(self) -> tuple[np.ndarray, np.ndarray]:
        """The spellings of `<S>` and `</S>` ([max_chars] int64 each)."""
        if not self.characters:
            return boundary_char_ids(self.max_chars)
        bos, eos = np.full((2, self.max_chars), _PAD_ID, np.int64)
        bos[:3], eos[:3] = (_BOW_ID, _BOS_ID, _EOW_ID), (_BOW_ID, _EOS_ID, _EOW_ID)
        return bos, eos


def encoded_tokens(sentences: Sequence[Sequence[str]], words=None, spelling: Spelling | None = None) -> np.ndarray:
    """A biLM's token ids for padded sentences: word ids in `words` (a `Vocabulary`) [n,T], spellings
    [n,T,C], or with both `word_char_ids` [n,T,1+C]; padding 0."""
    if spelling is None:
        ids = np.zeros((len(sentences), max([1, *map(len, sentences)])), np.int64)
        for i, sentence in enumerate(sentences):
            ids[i, : len(sentence)] = words.ids(sentence)
        return ids
    if words is None:
        return spelling.sentences(sentences)
    return word_char_ids(sentences, spelling, words.ids)


def word_char_ids(sentences: Sequence[Sequence[str]], spelling: Spelling, word_ids) -> np.ndarray:
    """[n, longest, 1 + max_chars] int64: each token's word id (`word_ids(words)` gives a sentence's),
    then its spelling; padding 0. The input of a `word+char` biLM. With `characters` spelling a word is
    looked up by what it spells, its first max_chars − 2 characters: ELMoForManyLangs built its
    vocabularies from words cut so."""
    chars = spelling.sentences(sentences)
    words = np.zeros(chars.shape[:2] + (1,), np.int64)
    keep = spelling.max_chars - 2
    for i, sentence in enumerate(sentences):
        if spelling.characters:
            sentence = [w[:keep] for w in sentence]
        words[i, : len(sentence), 0] = word_ids(sentence)
    return np.concatenate([words, chars], axis=-1)
