"""Tagged sentences for the sequence tagger (the LAC demo's format).

One sentence per line: space-separated words, a tab, space-separated tags,
as many tags as words (`北京 欢迎 你\tLOC-B v-B r-B`). Tags name chunks in the
IOB scheme, written `TYPE-B`/`TYPE-I` (LAC) or `B-TYPE`/`I-TYPE` (CoNLL), and
`O` outside any chunk. Lines that break the format are errors naming the file
and line; nothing is skipped silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import DataError
from reader.arrays import ArrayBatch, batched_rows
from reader.chars import Spelling, encoded_tokens
from reader.text_file import numbered_lines
from reader.vocab import SPECIAL_TOKENS, Vocabulary

WORD_IDS, ELMO_IDS, LENGTHS, TAGS = "word_ids", "elmo_ids", "lengths", "tags"


@dataclass
class TaggedCorpus:
    """Sentences of one file with the line each came from."""

    path: str
    words: list[list[str]]
    tags: list[list[str]]
    lines: list[int]


def read_tagged(path: str | Path) -> TaggedCorpus:
    """Reads a `words<TAB>tags` file; every malformed line is an error naming file:line."""
    corpus = TaggedCorpus(str(path), [], [], [])
    for lineno, line in numbered_lines(path, "tagged data file"):
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataError(f"{path}:{lineno}: expected 'words<TAB>tags', found {len(parts) - 1} tabs")
        words, tags = parts[0].split(), parts[1].split()
        if not words:
            raise DataError(f"{path}:{lineno}: no words")
        if len(words) != len(tags):
            raise DataError(f"{path}:{lineno}: {len(words)} words but {len(tags)} tags")
        corpus.words.append(words)
        corpus.tags.append(tags)
        corpus.lines.append(lineno)
    if not corpus.words:
        raise DataError(f"{path}: no sentences")
    return corpus


class TagSet:
    """Tag ↔ id; ids follow the order given (a tag file, or sorted training tags)."""

    def __init__(self, tags: list[str]):
        self.tags = list(tags)
        self.ids = {t: i for i, t in enumerate(self.tags)}

    @classmethod
    def from_corpus(cls, corpus: TaggedCorpus) -> "TagSet":
        return cls(sorted({t for tags in corpus.tags for t in tags}))

    @classmethod
    def load(cls, path: str | Path) -> "TagSet":
        tags = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        return cls(tags)

    def encode(self, corpus: TaggedCorpus, index: int) -> np.ndarray:
        try:
            return np.array([self.ids[t] for t in corpus.tags[index]], np.int64)
        except KeyError as exc:
            raise DataError(f"{corpus.path}:{corpus.lines[index]}: unknown tag {exc.args[0]!r} "
                            f"(known: {', '.join(self.tags[:12])}{', …' if len(self.tags) > 12 else ''})") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text("".join(t + "\n" for t in self.tags), encoding="utf-8")

    def __len__(self) -> int:
        return len(self.tags)


def build_word_vocab(corpus: TaggedCorpus, min_count: int = 1) -> Vocabulary:
    """The task's word vocabulary: the special tokens, then words by descending count."""
    counts = Counter(w for words in corpus.words for w in words)
    words = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIAL_TOKENS),
                   key=lambda w: (-counts[w], w))
    return Vocabulary([*SPECIAL_TOKENS, *words])


@dataclass(frozen=True)
class TaggingStream:
    """Picklable recipe for tagger batches (runs in a reader worker process).

    Training (`loop=True`) reshuffles every pass with (seed, pass); the state is
    (pass, position in the pass), so a resumed run continues exactly.
    """

    path: str
    word_vocab: str
    tagset: str
    elmo_vocab: str | None  # ELMo's word ids (None: none, or a character ELMo)
    batch_size: int
    shuffle: bool = False
    seed: int = 0
    loop: bool = False
    elmo_spelling: Spelling | None = None  # a character (or word+char) ELMo's spelling of words

    def __call__(self, state: dict | None = None):
        corpus = read_tagged(self.path)
        words = Vocabulary.load(self.word_vocab)
        elmo = Vocabulary.load(self.elmo_vocab) if self.elmo_vocab else None
        tagset = TagSet.load(self.tagset)
        # Training drops a pass's ragged tail; evaluation keeps it.
        for index, rows, after in batched_rows(len(corpus.words), self.batch_size, shuffle=self.shuffle,
                                               seed=self.seed, loop=self.loop, drop_last=self.loop, state=state):
            arrays = encode_rows(corpus, rows, words, elmo, tagset, self.elmo_spelling)
            yield ArrayBatch(index, arrays, int(arrays[LENGTHS].sum()), after)


def encode_rows(corpus: TaggedCorpus, rows, words: Vocabulary, elmo: Vocabulary | None,
                tagset: TagSet | None, elmo_spelling: Spelling | None = None) -> dict[str, np.ndarray]:
    """Padded id arrays [B,T] for the given sentences (tags only with a tag set).

    ELMo's input (`reader.chars.encoded_tokens`): ids in `elmo` [B,T], spellings [B,T,C], or both
    [B,T,1+C].
    """
    lengths = np.array([len(corpus.words[r]) for r in rows], np.int64)
    shape = (len(rows), int(lengths.max()))
    arrays = {WORD_IDS: np.zeros(shape, np.int64), LENGTHS: lengths}
    if elmo is not None or elmo_spelling is not None:
        arrays[ELMO_IDS] = encoded_tokens([corpus.words[r] for r in rows], elmo, elmo_spelling)
    if tagset is not None:
        arrays[TAGS] = np.zeros(shape, np.int64)
    for i, r in enumerate(rows):
        n = lengths[i]
        arrays[WORD_IDS][i, :n] = words.encode(corpus.words[r], boundaries=False)
        if tagset is not None:
            arrays[TAGS][i, :n] = tagset.encode(corpus, r)
    return arrays
