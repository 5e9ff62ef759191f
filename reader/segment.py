"""Raw text (Chinese, say) cut into the words of a model's vocabulary.

The fluid release's fine-tuning steps segment input sentences with the ELMo
vocabulary before mapping words to ids. `Segmenter("vocab", words)` does it
by forward maximum matching: from each position, the longest vocabulary
word that starts there, else one character; whitespace always separates.
`Segmenter("jieba", words)` runs jieba with the vocabulary as its
dictionary (the `jieba` extra). `"none"` splits on whitespace, as
pre-segmented text needs. Every word produced is in the vocabulary or a
single character, and the words joined are the text without its spaces.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from engine.errors import ConfigError

MODES = ("none", "vocab", "jieba")


class Segmenter:
    """`split(text)` → words, by `mode` (see the module docstring); picklable (reader workers)."""

    def __init__(self, mode: str, words: Iterable[str] = ()):
        if mode not in MODES:
            raise ConfigError(f"segment: {mode!r} is not one of {', '.join(MODES)}")
        self.mode = mode
        self.words = frozenset(w for w in words if w and not any(c.isspace() for c in w)) if mode != "none" else None
        self.longest = max(map(len, self.words), default=1) if self.words else 1
        self._jieba = None
        if mode == "jieba":
            _require_jieba()

    def __call__(self, text: str) -> list[str]:
        return self.split(text)

    def split(self, text: str) -> list[str]:
        """The words of `text`."""
        if self.mode == "none":
            return text.split()
        if self.mode == "jieba":
            return [w for w in self._jieba_tokenizer().cut(text, HMM=False) if w.strip()]
        return [word for piece in text.split() for word in self._longest_matches(piece)]

    def _longest_matches(self, piece: str) -> list[str]:
        words, i = [], 0
        while i < len(piece):
            for n in range(min(self.longest, len(piece) - i), 0, -1):
                if n == 1 or piece[i:i + n] in self.words:
                    words.append(piece[i:i + n])
                    i += n
                    break
        return words

    def _jieba_tokenizer(self):
        if self._jieba is None:  # built on first use: once per (worker) process
            import jieba

            with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as f:
                f.write("".join(f"{w} 1\n" for w in sorted(self.words)))
            tokenizer = jieba.Tokenizer(dictionary=f.name)
            tokenizer.initialize()
            Path(f.name).unlink()
            self._jieba = tokenizer
        return self._jieba

    def __getstate__(self):
        return {**self.__dict__, "_jieba": None}


def _require_jieba() -> None:
    try:
        import jieba  # noqa: F401
    except ImportError:
        raise ConfigError("segment 'jieba' needs jieba: pip install -e '.[jieba]'") from None


def segment(text: str, vocab, mode: str = "vocab") -> list[str]:
    """`text` cut into words of `vocab` (a `reader.vocab.Vocabulary` or a list of words); for a
    pipeline of your own, build a `Segmenter` once instead."""
    return Segmenter(mode, getattr(vocab, "tokens", vocab)).split(text)
