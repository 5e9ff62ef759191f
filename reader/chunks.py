"""IOB chunks: spans from tags and tags from spans, the transitions IOB2 allows, span-level P/R/F1.

A tag is `TYPE-B` / `TYPE-I` (LAC's spelling), `B-TYPE` / `I-TYPE` (CoNLL's),
`O`, or a bare `TYPE`, read as the beginning of a chunk of that type. An I
tag whose type differs from the open chunk starts a new chunk (conlleval's
rule). Scores are micro-averaged over exact (type, start, end) matches; this
is the definition the fluid LAC demo meant, without its tag-dictionary-order
defect (its chunk evaluator assumed ids laid out as type·2 + B/I).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.metrics import precision_recall_f1


def split_tag(tag: str) -> tuple[str, str]:
    """('B'|'I'|'O', chunk type) of a tag."""
    if tag == "O":
        return "O", ""
    head, _, tail = tag.rpartition("-")
    if head and tail in ("B", "I"):
        return tail, head
    head, _, tail = tag.partition("-")
    if tail and head in ("B", "I"):
        return head, tail
    return "B", tag


def chunks(tags: list[str]) -> set[tuple[str, int, int]]:
    """The (type, start, end-exclusive) chunks of a tag sequence."""
    found, current = set(), None
    for i, tag in enumerate(tags):
        kind, chunk_type = split_tag(tag)
        if kind == "I" and current is not None and current[0] == chunk_type:
            continue
        if current is not None:
            found.add((current[0], current[1], i))
        current = None if kind == "O" else (chunk_type, i)
    if current is not None:
        found.add((current[0], current[1], len(tags)))
    return found


def follows_iob2(sequences) -> bool:
    """Whether every I tag of the tag sequences continues a chunk of its type (IOB2, LAC's scheme); IOB1
    data (CoNLL-2003's files) starts chunks with I tags too."""
    for tags in sequences:
        previous = ("O", "")
        for tag in tags:
            kind, chunk_type = split_tag(tag)
            if kind == "I" and (previous[0] == "O" or previous[1] != chunk_type):
                return False
            previous = (kind, chunk_type)
    return True


def allowed_transitions(tags: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(which tags may start a sentence [n], which may follow which [n, n]: row → column) in IOB2: an I
    tag only continues a chunk of its own type, right after its B or I tag (AllenNLP's
    `allowed_transitions` for BIO); everything else may start, follow and end."""
    kinds = [split_tag(tag) for tag in tags]
    start = np.array([kind != "I" for kind, _ in kinds])
    follow = np.array([[kind != "I" or (before != "O" and before_type == chunk_type)
                        for kind, chunk_type in kinds] for before, before_type in kinds])
    return start, follow


def iob2_tags(spans, length: int) -> list[str]:
    """IOB2 tags (`B-TYPE`, `I-TYPE`, `O`) of `length` positions for (type, start, end-exclusive) spans."""
    tags = ["O"] * length
    for chunk_type, start, end in spans:
        tags[start:end] = [f"B-{chunk_type}"] + [f"I-{chunk_type}"] * (end - start - 1)
    return tags


@dataclass
class ChunkCounter:
    """Accumulates chunk matches over sentences, overall and per chunk type (conlleval's counts)."""

    predicted: int = 0
    gold: int = 0
    correct: int = 0
    by_type: dict = field(default_factory=dict)  # type → [predicted, gold, correct]

    def add(self, predicted_tags: list[str], gold_tags: list[str]) -> None:
        self.add_spans(chunks(predicted_tags), chunks(gold_tags))

    def add_spans(self, predicted: set, gold: set) -> None:
        """Counts one sentence's (type, start, end) spans."""
        self.predicted += len(predicted)
        self.gold += len(gold)
        self.correct += len(predicted & gold)
        for k, found in enumerate((predicted, gold, predicted & gold)):
            for chunk_type, _, _ in found:
                self.by_type.setdefault(chunk_type, [0, 0, 0])[k] += 1

    def scores(self) -> dict[str, float]:
        """Micro precision, recall and F1 over all chunks."""
        return precision_recall_f1(self.correct, self.predicted, self.gold)

    def type_scores(self) -> dict[str, dict[str, float]]:
        """Precision, recall and F1 of each chunk type."""
        return {t: precision_recall_f1(correct, predicted, gold)
                for t, (predicted, gold, correct) in sorted(self.by_type.items())}

