"""Tag text with an exported tagger (`paddle.inference`): `python -m tagger predict`, or `TaggerPredictor`.

    python -m tagger predict --model output/lac/inference --input sentences.txt [--segment auto|none|vocab|jieba]

    from tagger.predict import TaggerPredictor
    TaggerPredictor("output/lac/inference")(["我爱北京天安门", "the cat sees a tree ."])
    # [{'words': ['我', '爱', '北京', '天安门'], 'tags': [...], 'chunks': [...]}, …]

A line with spaces is taken as words separated by spaces. A line without
any (raw Chinese text, as users have it) is cut the way the training text
was: into the ELMo vocabulary's words by forward maximum matching (the fluid
release's own step; the task's words without ELMo), or into characters for a
tagger trained on characters. `--segment none` keeps every line as it is
(split on spaces only); `vocab` and `jieba` cut every line. Output: one JSON
record per input line (a blank line gives an empty record): the words, their
tags and the chunks they form.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from engine.errors import ConfigError, DataError
from engine.inference import InferenceProgram
from reader.chars import Spelling, encoded_tokens
from reader.chunks import chunks
from reader.segment import MODES, Segmenter
from reader.tagging import ELMO_IDS, LENGTHS, WORD_IDS, TagSet
from reader.text_file import numbered_lines
from reader.vocab import Vocabulary
from tagger.model import (
    ELMO_CHARACTERS_FILE,
    ELMO_VOCAB_FILE,
    INFERENCE_PREFIX,
    TAGGER_FILE,
    TAGS_FILE,
    TAGS_OUTPUT,
    WORDS_FILE,
)

SEGMENT_MODES = ("auto", *MODES)


class TaggerPredictor:
    """The exported tagger program with its vocabularies: lines of text → words, tags and chunks."""

    def __init__(self, directory: str | Path, threads: int = 2, segment: str = "auto"):
        """`segment`: how a line becomes words (see the module docstring): auto, none, vocab or jieba."""
        directory = Path(directory)
        if not (directory / f"{INFERENCE_PREFIX}.json").is_file():
            raise DataError(f"{directory}: no exported tagger ({INFERENCE_PREFIX}.json)")
        if segment not in SEGMENT_MODES:
            raise ConfigError(f"segment: {segment!r} is not one of {', '.join(SEGMENT_MODES)}")
        meta = json.loads((directory / TAGGER_FILE).read_text())
        self.words = Vocabulary.load(directory / WORDS_FILE)
        self.elmo = Vocabulary.load(directory / ELMO_VOCAB_FILE) if meta["use_elmo"] else None
        # A character ELMo reads spelled words; a word+char one (elmo_input, since ELMoForManyLangs) both.
        chars = meta.get("elmo_chars", 0)
        characters = directory / ELMO_CHARACTERS_FILE
        self.elmo_spelling = Spelling(chars, tuple(json.loads(characters.read_text(encoding="utf-8")))
                                      if characters.is_file() else ()) if chars else None
        self.elmo_words = self.elmo if meta.get("elmo_input", "char" if chars else "word") != "char" else None
        self.tags = TagSet.load(directory / TAGS_FILE)
        self.program = InferenceProgram(directory / INFERENCE_PREFIX, threads)
        self.segment = segment
        self.token_unit = meta.get("token_unit", "words")
        # The fluid release segments with the ELMo vocabulary; without ELMo, the task's own words.
        vocabulary = (self.elmo or self.words).tokens
        self._cut = Segmenter("vocab" if segment == "auto" else segment, vocabulary if segment != "none" else ())
        self.segmented = 0  # lines without spaces cut into words by `auto`

    def __call__(self, lines: list[str]) -> list[dict]:
        """{"words", "tags", "chunks"} for each line of text (see the module docstring); a chunk is
        {"text", "label", "start", "end"} with word offsets, its text as the line wrote it (words joined
        by a space, or by nothing when the line had no spaces)."""
        sentences = [self.split(line) for line in lines]
        records = []
        for line, words, tags in zip(lines, sentences, self.tag(sentences)):
            joiner = " " if " " in line.strip() else ""
            records.append({"words": words, "tags": tags,
                            "chunks": [{"text": joiner.join(words[a:b]), "label": label, "start": a, "end": b}
                                       for label, a, b in sorted(chunks(tags), key=lambda c: c[1])]})
        return records

    def split(self, line: str) -> list[str]:
        """A line's words, by the `segment` mode."""
        if self.segment != "auto":
            return self._cut(line)
        words = line.split()
        if len(words) == 1 and len(words[0]) > 1 and not words[0].isascii():  # raw (Chinese) text
            self.segmented += 1
            return list(words[0]) if self.token_unit == "characters" else self._cut(words[0])
        return words

    def tag(self, sentences: list[list[str]]) -> list[list[str]]:
        """Tags for each sentence of words (an empty sentence gets none)."""
        present = [s for s in sentences if s]
        tagged = iter(self._tag(present) if present else [])
        return [next(tagged) if s else [] for s in sentences]

    def _tag(self, sentences: list[list[str]]) -> list[list[str]]:
        lengths = np.array([len(s) for s in sentences], np.int64)
        inputs = {WORD_IDS: encoded_tokens(sentences, self.words), LENGTHS: lengths}
        if self.elmo is not None:
            inputs[ELMO_IDS] = encoded_tokens(sentences, self.elmo_words, self.elmo_spelling)
        decoded = self.program.run(inputs)[TAGS_OUTPUT]
        return [[self.tags.tags[t] for t in decoded[i, :n]] for i, n in enumerate(lengths)]



def main(argv: list[str] | None = None) -> int:
    """Parses the command line, tags the input, prints one JSON record per line; returns how many."""
    parser = argparse.ArgumentParser(prog="python -m tagger predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the tagger's inference directory")
    parser.add_argument("--input", required=True, help="text file, one sentence per line (segmented or raw)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--segment", choices=SEGMENT_MODES, default="auto",
                        help="auto (default): a line without spaces is cut like the training text (by the ELMo "
                             "vocabulary's words, or into characters); none: split on spaces only; vocab, jieba "
                             "(the [jieba] extra): cut every line")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    predictor = TaggerPredictor(args.model, args.threads, args.segment)
    count, batch = 0, []
    for _, line in numbered_lines(args.input, "input"):  # streamed: a batch at a time
        batch.append(line)
        if len(batch) == args.batch_size:
            count += _print(predictor(batch))
            batch = []
    count += _print(predictor(batch))
    if predictor.segmented:
        how = "into characters" if predictor.token_unit == "characters" else "into the model's vocabulary words"
        print(f"note: {predictor.segmented:,} line(s) without spaces were cut {how}, as the training text was "
              "(--segment none keeps lines as they are)", file=sys.stderr)
    return count


def _print(records: list[dict]) -> int:
    for record in records:
        print(json.dumps(record, ensure_ascii=False))
    return len(records)
