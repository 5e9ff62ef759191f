"""Tag tokenized text with an exported tagger, through `paddle.inference`.

    python -m tagger.predict --model output/lac/inference --input sentences.txt [--batch-size 32]

One whitespace-tokenized sentence per input line (raw text with --segment);
prints `word/TAG …` per line, a blank line for a blank one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from engine.cli import run
from engine.errors import DataError
from engine.inference import InferenceProgram
from reader.chars import padded_char_ids
from reader.tagging import ELMO_IDS, LENGTHS, WORD_IDS, TagSet
from reader.vocab import Vocabulary
from tagger.model import ELMO_VOCAB_FILE, INFERENCE_PREFIX, TAGGER_FILE, TAGS_FILE, TAGS_OUTPUT, WORDS_FILE


class TaggerPredictor:
    """The exported tagger program with its vocabularies, for raw tokenized sentences."""

    def __init__(self, directory: str | Path, threads: int = 2):
        directory = Path(directory)
        if not (directory / f"{INFERENCE_PREFIX}.json").is_file():
            raise DataError(f"{directory}: no exported tagger ({INFERENCE_PREFIX}.json)")
        meta = json.loads((directory / TAGGER_FILE).read_text())
        self.words = Vocabulary.load(directory / WORDS_FILE)
        self.elmo = Vocabulary.load(directory / ELMO_VOCAB_FILE) if meta["use_elmo"] else None
        self.elmo_chars = meta.get("elmo_chars", 0)  # a character ELMo: spelled words
        self.tags = TagSet.load(directory / TAGS_FILE)
        self.program = InferenceProgram(directory / INFERENCE_PREFIX, threads)

    def tag(self, sentences: list[list[str]]) -> list[list[str]]:
        """Tags for each sentence."""
        lengths = np.array([len(s) for s in sentences], np.int64)
        inputs = {WORD_IDS: self._ids(sentences, self.words, lengths), LENGTHS: lengths}
        if self.elmo_chars:
            inputs[ELMO_IDS] = padded_char_ids(sentences, self.elmo_chars)
        elif self.elmo is not None:
            inputs[ELMO_IDS] = self._ids(sentences, self.elmo, lengths)
        decoded = self.program.run(inputs)[TAGS_OUTPUT]
        return [[self.tags.tags[t] for t in decoded[i, :n]] for i, n in enumerate(lengths)]

    @staticmethod
    def _ids(sentences, vocab, lengths) -> np.ndarray:
        ids = np.zeros((len(sentences), int(lengths.max())), np.int64)
        for i, words in enumerate(sentences):
            ids[i, : len(words)] = vocab.encode(words, boundaries=False)
        return ids


def main(argv: list[str] | None = None) -> list[list[str]]:
    """Parses the command line, tags the input, prints and returns the tags."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the tagger's inference directory")
    parser.add_argument("--input", required=True, help="text file, one tokenized sentence per line")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--segment", choices=("none", "vocab", "jieba"), default="none",
                        help="raw text (Chinese): cut lines into the ELMo vocabulary's words (forward maximum "
                             "matching, or jieba: the [jieba] extra); none: split on whitespace")
    args = parser.parse_args(argv)

    from reader.segment import Segmenter
    from reader.sentences import read_batches

    predictor = TaggerPredictor(args.model)
    # The fluid release segments with the ELMo vocabulary; without ELMo, the task's own words.
    split = Segmenter(args.segment, (predictor.elmo or predictor.words).tokens)
    tagged = []
    for _, batch in read_batches(args.input, args.batch_size, split):
        words_only = [words for words in batch if words]  # a blank line is printed blank
        tags = iter(predictor.tag(words_only) if words_only else [])
        for words in batch:
            sentence_tags = next(tags) if words else []
            print(" ".join(f"{w}/{t}" for w, t in zip(words, sentence_tags)))
            tagged.append(sentence_tags)
    return tagged


if __name__ == "__main__":
    run(main)
