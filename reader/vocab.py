"""Word vocabularies: one token per line, the line index is the id.

The format of the fluid ELMo and bilm-tf releases. It must contain `<S>`,
`</S>` and `<UNK>`; out-of-vocabulary words map to `<UNK>`. For the sampled
softmax the ids must be sorted by descending frequency (the log-uniform
sampler assumes it). A line may carry a count after the token
(`token<TAB>count`), which is ignored. A line of non-ASCII whitespace alone
(the ideographic space U+3000 that Chinese vocabularies hold) is that token:
whitespace-split text never yields it, but a segmenter's token lists can.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import DataError
from reader.text_file import numbered_lines

BOS, EOS, UNK = "<S>", "</S>", "<UNK>"
SPECIAL_TOKENS = (BOS, EOS, UNK)
# The fluid release's vocabulary files may carry this bookkeeping line.
_SKIPPED = "!!!MAXTERMID"


class Vocabulary:
    """Token ↔ id mapping with the three special tokens.

    A biLM that spells words from its own character vocabulary (an
    ELMoForManyLangs import; `reader.chars.Spelling`) keeps those characters
    here too, in id order: the model directory's `characters.json`.
    """

    def __init__(self, tokens: list[str], source: str = "vocabulary", path: Path | None = None,
                 characters: tuple[str, ...] = ()):
        self.source = source
        self.path = path  # the file it was read from, if any
        self.characters = tuple(characters)
        self._tokens = list(tokens)
        self._ids: dict[str, int] = {}
        for i, tok in enumerate(self._tokens):
            if tok in self._ids:
                raise DataError(
                    f"{source}: duplicate entry '{tok}' (ids {self._ids[tok]} and {i})"
                )
            self._ids[tok] = i
        missing = [t for t in SPECIAL_TOKENS if t not in self._ids]
        if missing:
            raise DataError(f"{source}: missing special token(s) {', '.join(missing)}")
        self.bos_id, self.eos_id, self.unk_id = (self._ids[t] for t in SPECIAL_TOKENS)

    @classmethod
    def load(cls, path: str | Path, characters: tuple[str, ...] = ()) -> "Vocabulary":
        """Reads a vocabulary file (with the model's `characters`, if it has any); errors name the file
        and line."""
        tokens: list[str] = []
        first_line: dict[str, int] = {}
        for lineno, line in numbered_lines(path, "vocabulary file"):
            fields = line.split()
            if not fields and line and line.strip(" \t\f\v") == line:
                fields = [line]  # a token of non-ASCII whitespace (U+3000 in Chinese vocabularies) is kept
            if not fields:
                raise DataError(f"{path}:{lineno}: empty line in vocabulary")
            if len(fields) > 2 or (len(fields) == 2 and not fields[1].isdigit()):
                raise DataError(
                    f"{path}:{lineno}: expected one token (optionally followed by a count), "
                    f"got {line.strip()!r}"
                )
            token = fields[0]
            if token == _SKIPPED:
                continue
            if token in first_line:
                raise DataError(f"{path}:{lineno}: duplicate entry '{token}' (first on line {first_line[token]})")
            first_line[token] = lineno
            tokens.append(token)
        if not tokens:
            raise DataError(f"{path}: empty vocabulary")
        return cls(tokens, source=str(path), path=Path(path), characters=characters)

    def __len__(self) -> int:
        return len(self._tokens)

    def __iter__(self):
        """The tokens in id order."""
        return iter(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    @property
    def tokens(self) -> list[str]:
        return list(self._tokens)

    def ids(self, words: list[str]) -> list[int]:
        """The ids of `words` (unknown words: `<UNK>`'s), without boundary tokens: what ELMo's feeds and
        `ElmoEmbedder` take, since the biLM adds `<S>`/`</S>` itself."""
        return [self._ids.get(w, self.unk_id) for w in words]

    def encode(self, words: list[str], boundaries: bool = True) -> np.ndarray:
        """Ids of `words`, wrapped in `<S>` … `</S>` when `boundaries` is set (int32): the language model's
        training rows. Feeds of ELMo layers take `ids(words)` instead."""
        ids = [self._ids.get(w, self.unk_id) for w in words]
        if boundaries:
            ids = [self.bos_id, *ids, self.eos_id]
        return np.asarray(ids, dtype=np.int32)

    @staticmethod
    def storable(token: str) -> bool:
        """Whether a vocabulary file's line can hold `token` (see the module doc)."""
        if token.split() == [token]:
            return not token.startswith("!!!")  # the fluid release's bookkeeping lines are skipped
        return bool(token) and token.strip(" \t\f\v\r\n") == token and not token.strip()

    def save(self, path: str | Path) -> None:
        Path(path).write_text("".join(t + "\n" for t in self._tokens), encoding="utf-8")
