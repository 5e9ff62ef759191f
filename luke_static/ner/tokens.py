"""CoNLL-2003 named entities for LUKE's token classification (`LukeForTokenClassification`): a tag per word.

The other NER head, as HF's token-classification examples train it: every
word is split into subwords as the span recipe does (`data.word_pieces`), the
word's IOB2 tag (`B-TYPE`, `I-TYPE`, `O`) is the label of its first subword,
and later subwords and special tokens take no part (`IGNORED_LABEL`). A row
is a sentence alone, without document context; a sentence longer than the
model takes is cut into pieces (counted and reported). Decoding takes the
argmax tag at each word's first subword and reads entities from the tags by
conlleval's rule; an entity's probability is the mean of its words' tag
probabilities. Scores are the span recipe's (`data.span_scores`), so the
two heads compare on the same data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.errors import DataError
from luke_static.heads import IGNORED_LABEL
from luke_static.ner.data import OUTSIDE, Sentence, word_pieces, word_ranges
from reader.chunks import chunks, iob2_tags


def tag_labels(types: list[str]) -> list[str]:
    """The classifier's labels for entity types (`O` first): `O`, then `B-T`, `I-T` for each type T."""
    return [OUTSIDE, *(f"{kind}-{t}" for t in types if t != OUTSIDE for kind in "BI")]


def is_tag_set(labels: list[str]) -> bool:
    """Whether labels are IOB tags (so entities can be read from them)."""
    return all(label == OUTSIDE or label[:2] in ("B-", "I-") for label in labels)


@dataclass
class TaggedRows:
    """A split as token-classification rows: each piece of a sentence with its subwords and labels."""

    sentences: list[Sentence]
    pieces: list[tuple[int, int]] = field(default_factory=list)  # per row: (sentence, offset of its first word)
    input_ids: list[list[int]] = field(default_factory=list)
    first: list[list[int]] = field(default_factory=list)  # per row: each word's first subword position
    labels: list[list[int]] = field(default_factory=list)
    cut: int = 0  # sentences cut into pieces


def encode_tagged(sentences: list[Sentence], tokenizer, max_seq_length: int, labels: list[str] | None,
                  path: str = "sentences") -> TaggedRows:
    """Rows of every sentence, labelled from its entities (an unknown type is an error naming the file);
    without `labels` (prediction) every label is `IGNORED_LABEL`."""
    index = {label: i for i, label in enumerate(labels or [])}
    rows = TaggedRows(sentences)
    for k, sentence in enumerate(sentences):
        words = [word_pieces(tokenizer, w) for w in sentence.words]
        tags = iob2_tags(sorted(sentence.entities, key=lambda e: e[1]), len(words))
        unknown = {t for t in tags if t not in index}
        if labels is None:
            index = {t: IGNORED_LABEL for t in tags}
        elif unknown:
            raise DataError(f"{path}: tag(s) {', '.join(sorted(unknown))} are not among the training data's")
        for start, end in word_ranges(words, max_seq_length - 2):
            rows.cut += start > 0 and end == len(words)
            ids, first, targets = [tokenizer.cls_id], [], [IGNORED_LABEL]
            for pieces, tag in zip(words[start:end], tags[start:end]):
                first.append(len(ids))
                ids += pieces
                targets += [index[tag]] + [IGNORED_LABEL] * (len(pieces) - 1)
            # A single word longer than the model takes keeps its first subwords.
            rows.input_ids.append(ids[:max_seq_length - 1] + [tokenizer.sep_id])
            rows.labels.append(targets[:max_seq_length - 1] + [IGNORED_LABEL])
            rows.first.append(first)
            rows.pieces.append((k, start))
    return rows


def tagged_arrays(rows: TaggedRows, tokenizer) -> dict[str, np.ndarray]:
    """Word inputs and `labels` [n, L] padded to the longest row (padding labelled `IGNORED_LABEL`)."""
    n, length = len(rows.input_ids), max((len(ids) for ids in rows.input_ids), default=2)
    arrays = {"input_ids": np.full((n, length), tokenizer.pad_id, np.int64),
              "attention_mask": np.zeros((n, length), np.int64), "token_type_ids": np.zeros((n, length), np.int64),
              "labels": np.full((n, length), IGNORED_LABEL, np.int64)}
    for i, (ids, targets) in enumerate(zip(rows.input_ids, rows.labels)):
        arrays["input_ids"][i, :len(ids)] = ids
        arrays["attention_mask"][i, :len(ids)] = 1
        arrays["labels"][i, :len(targets)] = targets
    return arrays


def word_tags(rows: TaggedRows, logits: np.ndarray, labels: list[str]) -> list[list[tuple[str, float]]]:
    """Each sentence's (tag, probability) per word: the argmax at the word's first subword."""
    tagged: list[list] = [[(OUTSIDE, 1.0)] * len(s.words) for s in rows.sentences]
    for row, ((k, offset), first) in enumerate(zip(rows.pieces, rows.first)):
        scores = logits[row, first]
        probability = np.exp(scores - scores.max(-1, keepdims=True))
        probability /= probability.sum(-1, keepdims=True)
        for i, p in enumerate(probability):
            best = int(p.argmax())
            tagged[k][offset + i] = (labels[best], float(p[best]))
    return tagged


def tagged_entities(tags: list[tuple[str, float]]) -> dict[tuple[str, int, int], float]:
    """{(type, start, end): mean tag probability} of one sentence's tagged words."""
    return {(t, a, b): float(np.mean([p for _, p in tags[a:b]])) for t, a, b in chunks([tag for tag, _ in tags])}
