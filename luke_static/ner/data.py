"""CoNLL-2003 named entities for LUKE's span classification: documents, candidate spans, decoding, scores.

**Files** (CoNLL-2003's): one token per line, the token in the first column
and its tag in the last (`EU NNP B-NP B-ORG`); a blank line ends a
sentence; a `-DOCSTART-` line starts a document (a file without them is one
document). Tags are `O`, `B-TYPE` and `I-TYPE`, in IOB1 (the original
files) or IOB2; entities are read from them by conlleval's rule.

**Encoding** (the LUKE release's NER recipe): every word is byte-level BPE'd
on its own with a space in front (none before a word starting with `'` or a
lone punctuation mark). A sentence is encoded with the surrounding subwords of
its document as context, up to `max_seq_length` in all: the side with less
context gets up to half of the room, the other side the rest. Every span of
the sentence's words of at most `max_mention_length` subwords is a candidate
entity (`[MASK]`, positions over its subwords; its first and last subword feed
the head), labelled with its type or `O`; a sentence with more than
`max_entity_length` candidates gets several features, the candidates dealt
into equal chunks. A sentence longer than the model takes is cut into pieces
(counted and reported).

**Decoding**: each candidate's label is the argmax of its logits; candidates
labelled `O` are dropped, the rest are taken greedily by their top logit when
none of their words is taken yet. **Scores** are conlleval's span-level micro
precision/recall/F1 (the same as `seqeval`'s default mode), and per type.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import DataError
from luke_static.heads import IGNORED_LABEL
from luke_static.tokenizer import EntityTokenizer
from reader.chunks import ChunkCounter, chunks
from reader.text_file import numbered_lines

OUTSIDE = "O"
_TAG = re.compile(r"^(O|[BI]-\S+)$")


@dataclass
class Sentence:
    """A sentence's words and entities ((type, start, end-exclusive) word spans), and its document."""

    words: list[str]
    entities: set = field(default_factory=set)
    document: int = 0


@dataclass(frozen=True)
class SpanSettings:
    """How sentences become features (what training, evaluation and the predictor share)."""

    max_seq_length: int = 512  # subwords per feature, context and special tokens included
    max_entity_length: int = 128  # candidate spans per feature
    max_mention_length: int = 16  # subwords per candidate span


@dataclass
class Feature:
    """One model input: a sentence (maybe a piece of one) in context, and a chunk of its candidates."""

    piece: int  # index of the piece of a sentence it scores (`Encoded.pieces`)
    input_ids: list[int]
    spans: list[tuple[int, int]]  # candidate word spans (start, end-exclusive)
    token_spans: list[tuple[int, int]]  # the same in input positions (first, last + 1)
    labels: list[int]


# -- reading --------------------------------------------------------------------------


def read_conll(path: str | Path) -> list[Sentence]:
    """Every sentence of a CoNLL file, with its document; a line that breaks the format is an error naming it."""
    sentences, words, tags, columns, document = [], [], [], None, 0

    def end_sentence():
        if words:
            sentences.append(Sentence(list(words), chunks(tags), document))
            words.clear()
            tags.clear()

    for number, line in numbered_lines(path, "CoNLL file"):
        fields = line.split()
        if not fields:
            end_sentence()
            continue
        if fields[0] == "-DOCSTART-":
            end_sentence()
            document += 1 if sentences else 0
            continue
        columns = columns or len(fields)
        if len(fields) < 2 or len(fields) != columns:
            raise DataError(f"{path}:{number}: {len(fields)} column(s); the file's token lines have {columns} "
                            "(the token first, the tag last)")
        if not _TAG.match(fields[-1]):
            raise DataError(f"{path}:{number}: tag '{fields[-1]}' is not O, B-TYPE or I-TYPE")
        words.append(fields[0])
        tags.append(fields[-1])
    end_sentence()
    if not sentences:
        raise DataError(f"{path}: no sentences")
    return sentences


def entity_types(sentences: list[Sentence]) -> list[str]:
    """`O` first, then the entity types of the training sentences, sorted: the classifier's labels."""
    return [OUTSIDE, *sorted({t for s in sentences for t, _, _ in s.entities})]


def word_pieces(tokenizer: EntityTokenizer, word: str) -> list[int]:
    """A word's subwords as the recipe tokenizes it: with a space in front, except before `'…` or punctuation."""
    bare = word.startswith("'") or (len(word) == 1 and word in string.punctuation)
    return tokenizer.word_piece_ids(word if bare else " " + word)


# -- features ---------------------------------------------------------------------------


@dataclass
class Encoded:
    """A split's sentences, the pieces the model sees (long sentences cut), their features, and counts."""

    sentences: list[Sentence]
    pieces: list[tuple[int, int]] = field(default_factory=list)  # per piece: (sentence, offset of its first word)
    features: list[Feature] = field(default_factory=list)
    cut: int = 0  # sentences cut because the model cannot take them whole
    unreachable: int = 0  # gold entities longer than max_mention_length subwords (never candidates)


def encode(sentences: list[Sentence], tokenizer: EntityTokenizer, settings: SpanSettings,
           types: list[str], path: str | Path = "sentences") -> Encoded:
    """Features of every sentence (labels from its entities; an unknown type is an error naming the file)."""
    index = {t: i for i, t in enumerate(types)}
    encoded = Encoded(sentences)
    pieces, words_of = [], []
    for k, sentence in enumerate(sentences):
        words = [word_pieces(tokenizer, w) for w in sentence.words]
        for start, end in word_ranges(words, settings.max_seq_length - 2):
            encoded.pieces.append((k, start))
            encoded.cut += start > 0
            entities = {(t, max(a, start) - start, min(b, end) - start) for t, a, b in sentence.entities
                        if a < end and b > start}
            pieces.append(Sentence(sentence.words[start:end], entities, sentence.document))
            words_of.append(words[start:end])
    by_document: dict[int, list[int]] = {}
    for k, piece in enumerate(pieces):
        by_document.setdefault(piece.document, []).append(k)
    for members in by_document.values():
        flat = [[t for w in words_of[k] for t in w] for k in members]
        for position, k in enumerate(members):
            left = [t for sub in flat[:position] for t in sub]
            right = [t for sub in flat[position + 1:] for t in sub]
            encoded.features += _sentence_features(k, pieces[k], words_of[k], left, right, tokenizer, settings,
                                                   index, encoded, path)
    return encoded


def word_ranges(words: list[list[int]], room: int) -> list[tuple[int, int]]:
    """Word ranges of at most `room` subwords each (a single longer word stands alone) covering `words`."""
    ranges, start = [], 0
    while start < len(words):
        end, used = start, 0
        while end < len(words) and (end == start or used + len(words[end]) <= room):
            used += len(words[end])
            end += 1
        ranges.append((start, end))
        start = end
    return ranges or [(0, 0)]


def _sentence_features(k, sentence, words, left, right, tokenizer, settings, index, encoded, path) -> list[Feature]:
    """Piece `k` in its context (`left`/`right`: its document's subwords around it), its candidates in chunks."""
    tokens = [t for w in words for t in w]
    room = max(0, settings.max_seq_length - 2 - len(tokens))
    if len(left) < len(right):
        n_left = min(len(left), room // 2)
        n_right = room - n_left
    else:
        n_right = min(len(right), room // 2)
        n_left = room - n_right
    left = left[len(left) - min(n_left, len(left)):]
    input_ids = [tokenizer.cls_id, *left, *tokens, *right[:n_right], tokenizer.sep_id]
    starts = np.cumsum([0] + [len(w) for w in words]) + 1 + len(left)  # each word's first input position
    spans, token_spans = [], []
    for i in range(len(words)):
        for j in range(i, len(words)):
            if starts[j + 1] - starts[i] > settings.max_mention_length:
                break
            spans.append((i, j + 1))
            token_spans.append((int(starts[i]), int(starts[j + 1])))
    gold = {(a, b): t for t, a, b in sentence.entities}
    unknown = set(gold.values()) - set(index)
    if unknown:
        raise DataError(f"{path}: entity type(s) {', '.join(sorted(unknown))} are not among the training data's")
    encoded.unreachable += len(set(gold) - set(spans))
    if not spans:
        return []
    labels = [index[gold[s]] if s in gold else 0 for s in spans]
    size = math.ceil(len(spans) / math.ceil(len(spans) / settings.max_entity_length))
    return [Feature(k, input_ids, spans[c:c + size], token_spans[c:c + size], labels[c:c + size])
            for c in range(0, len(spans), size)]


def feature_arrays(features: list[Feature], settings: SpanSettings,
                   tokenizer: EntityTokenizer) -> dict[str, np.ndarray]:
    """Model inputs and `labels` ([n, max_entity_length], -100 at padding), padded to the settings' sizes."""
    n, S, E, M = len(features), settings.max_seq_length, settings.max_entity_length, settings.max_mention_length
    arrays = {"input_ids": np.full((n, S), tokenizer.pad_id, np.int64), "attention_mask": np.zeros((n, S), np.int64),
              "token_type_ids": np.zeros((n, S), np.int64),
              "entity_ids": np.full((n, E), tokenizer.entity_pad_id, np.int64),
              "entity_attention_mask": np.zeros((n, E), np.int64),
              "entity_token_type_ids": np.zeros((n, E), np.int64),
              "entity_position_ids": np.full((n, E, M), -1, np.int64),
              "entity_start_positions": np.zeros((n, E), np.int64), "entity_end_positions": np.zeros((n, E), np.int64),
              "labels": np.full((n, E), IGNORED_LABEL, np.int64)}
    for i, f in enumerate(features):
        arrays["input_ids"][i, :len(f.input_ids)] = f.input_ids
        arrays["attention_mask"][i, :len(f.input_ids)] = 1
        m = len(f.spans)
        arrays["entity_ids"][i, :m] = tokenizer.entity_mask_id
        arrays["entity_attention_mask"][i, :m] = 1
        arrays["labels"][i, :m] = f.labels
        for k, (first, stop) in enumerate(f.token_spans):
            arrays["entity_position_ids"][i, k, :stop - first] = np.arange(first, stop)
            arrays["entity_start_positions"][i, k], arrays["entity_end_positions"][i, k] = first, stop - 1
    return arrays


# -- decoding and scores --------------------------------------------------------------------


def decode(encoded: Encoded, logits: np.ndarray, types: list[str]) -> list[set]:
    """Each sentence's predicted (type, start, end) spans: argmax labels, greedy by top logit, no overlap."""
    return [set(found) for found in scored_entities(encoded, logits, types)]


def scored_entities(encoded: Encoded, logits: np.ndarray, types: list[str]) -> list[dict]:
    """`decode`'s spans of each sentence, each with the probability of its label ({(type, start, end): p})."""
    candidates: list[list] = [[] for _ in encoded.pieces]
    for f, feature in enumerate(encoded.features):
        scores = logits[f, :len(feature.spans)]
        for (start, end), row in zip(feature.spans, scores):
            label = int(np.argmax(row))
            if label != 0:
                probability = 1.0 / float(np.exp(row - row[label]).sum())
                candidates[feature.piece].append((float(row[label]), start, end, types[label], probability))
    predicted: list[dict] = [{} for _ in encoded.sentences]
    for found, (k, offset) in zip(candidates, encoded.pieces):
        taken = set()
        for _, start, end, entity_type, probability in sorted(found, key=lambda c: -c[0]):
            if taken.isdisjoint(range(start, end)):
                taken.update(range(start, end))
                predicted[k][(entity_type, start + offset, end + offset)] = probability
    return predicted


def span_scores(predicted: list[set], sentences: list[Sentence]) -> dict:
    """Span-level micro P/R/F1 over all sentences (conlleval's), and per type."""
    counter = ChunkCounter()
    for spans, sentence in zip(predicted, sentences):
        counter.add_spans(spans, sentence.entities)
    return {**counter.scores(), "per_type": counter.type_scores()}

