"""Chunk precision / recall / F1 under the IOB scheme.

A tag is `TYPE-B` / `TYPE-I` (LAC's spelling), `B-TYPE` / `I-TYPE` (CoNLL's),
`O`, or a bare `TYPE`, read as the beginning of a chunk of that type. An I
tag whose type differs from the open chunk starts a new chunk (conlleval's
rule). Scores are micro-averaged over exact (type, start, end) matches; this
is the definition the fluid LAC demo meant, without its tag-dictionary-order
defect (its chunk evaluator assumed ids laid out as type·2 + B/I).
"""

from __future__ import annotations

from dataclasses import dataclass


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


@dataclass
class ChunkCounter:
    """Accumulates chunk matches over sentences."""

    predicted: int = 0
    gold: int = 0
    correct: int = 0

    def add(self, predicted_tags: list[str], gold_tags: list[str]) -> None:
        p, g = chunks(predicted_tags), chunks(gold_tags)
        self.predicted += len(p)
        self.gold += len(g)
        self.correct += len(p & g)

    def scores(self) -> dict[str, float]:
        precision = self.correct / self.predicted if self.predicted else 0.0
        recall = self.correct / self.gold if self.gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1}
