"""TACRED-format relation data: tokenized sentences with a subject and an object span, and a relation.

A file is a JSON list of records (TACRED's `train.json`), or one record per
line (JSONL). A record needs `token` (the words), `subj_start`, `subj_end`,
`obj_start`, `obj_end` (word indices, ends inclusive as in TACRED) and, for
training and scoring, `relation`; other fields (`id`, `subj_type`,
`stanford_pos`, …) are ignored. PTB bracket tokens (`-LRB-` …) become
brackets. The words are joined by spaces; the subject is the head entity
(`<ent>` … `<ent>`, `[MASK]`) and the object the tail (`<ent2>` … `<ent2>`,
`[MASK2]`), the tokenizer's `entity_pair_classification` mode.

Scoring is the official TACRED scorer's: micro precision, recall and F1 over
the relations other than `no_relation`; a `no_relation` gold with another
prediction counts as a guess, a relation gold predicted `no_relation` as a
miss.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import DataError
from luke_static.tokenizer import LukeTokenizer

INFERENCE_PREFIX = "relation"
_BRACKETS = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}
_SPAN_FIELDS = ("subj_start", "subj_end", "obj_start", "obj_end")


@dataclass
class RelationRecord:
    """One sentence: its words, the subject's and the object's word span (end exclusive) and the relation."""

    words: list[str]
    subject: tuple[int, int]
    object: tuple[int, int]
    relation: str | None


def read_relations(path: str | Path, need_relation: bool = True) -> list[RelationRecord]:
    """Every record of a TACRED-format file; a record that cannot mean anything is an error naming it."""
    items = _json_records(Path(path))
    records = [_record(item, i, path, need_relation) for i, item in enumerate(items)]
    if not records:
        raise DataError(f"{path}: no records")
    return records


def _json_records(path: Path) -> list:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"relation file not found: {path}") from None
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON: {exc}") from None
        return items
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not a JSON record: {exc}") from None
    return items


def _record(item, index: int, path, need_relation: bool) -> RelationRecord:
    where = f"{path}: record {index}"
    if not isinstance(item, dict):
        raise DataError(f"{where}: not a JSON object")
    missing = [k for k in ("token", *_SPAN_FIELDS, *(("relation",) if need_relation else ())) if k not in item]
    if missing:
        raise DataError(f"{where} has no {', '.join(missing)}")
    words = [_BRACKETS.get(w, w) for w in item["token"]]
    try:
        subj_start, subj_end, obj_start, obj_end = (int(item[k]) for k in _SPAN_FIELDS)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {', '.join(_SPAN_FIELDS)} must be integers") from None
    spans = {"subj": (subj_start, subj_end + 1), "obj": (obj_start, obj_end + 1)}
    for name, (start, end) in spans.items():
        if not 0 <= start < end <= len(words):
            raise DataError(f"{where}: {name}_start/{name}_end ({start}, {end - 1}) are not inside its "
                            f"{len(words)} tokens")
    (a, b), (c, d) = spans["subj"], spans["obj"]
    if a < d and c < b:
        raise DataError(f"{where}: the subject ({a}, {b - 1}) and the object ({c}, {d - 1}) overlap")
    return RelationRecord(words, spans["subj"], spans["obj"], item.get("relation"))


def relation_set(records: list[RelationRecord], none_label: str) -> list[str]:
    """`none_label` first, then the training records' other relations, sorted."""
    return [none_label, *sorted({r.relation for r in records} - {none_label})]


def encode_relations(records: list[RelationRecord], tokenizer: LukeTokenizer, labels: list[str] | None,
                     max_seq_length: int, path: str | Path = "records") -> dict[str, np.ndarray]:
    """Model inputs padded to `max_seq_length`, and `labels` [n] (the relations' indices) when given."""
    index = {label: i for i, label in enumerate(labels or [])}
    encodings, targets = [], np.zeros(len(records), np.int64)
    for i, record in enumerate(records):
        text, spans = _text(record)
        encoding = tokenizer.encode(text, entity_spans=spans)
        if len(encoding.input_ids) > max_seq_length:
            raise DataError(f"{path}: record {i}: {len(encoding.input_ids)} tokens exceed max_seq_length "
                            f"{max_seq_length} (set data.max_seq_length)")
        encodings.append(encoding)
        if labels is not None and record.relation is not None:
            if record.relation not in index:
                raise DataError(f"{path}: record {i}: relation '{record.relation}' is not one of the "
                                f"{len(labels)} relations of the training data")
            targets[i] = index[record.relation]
    arrays = tokenizer.pad(encodings, max_length=max_seq_length, max_entity_length=2)
    arrays["labels"] = targets
    return arrays


def _text(record: RelationRecord) -> tuple[str, list[tuple[int, int]]]:
    """The words joined by spaces, and the subject's and object's character spans in it."""
    starts, position = [], 0
    for word in record.words:
        starts.append(position)
        position += len(word) + 1
    spans = [(starts[s], starts[e - 1] + len(record.words[e - 1])) for s, e in (record.subject, record.object)]
    return " ".join(record.words), spans


def tacred_scores(predicted: list[str], gold: list[str], none_label: str = "no_relation") -> dict:
    """The official TACRED scorer: micro P/R/F1 without `none_label`, and per relation."""
    correct, guessed, expected = Counter(), Counter(), Counter()
    for p, g in zip(predicted, gold):
        if p != none_label:
            guessed[p] += 1
        if g != none_label:
            expected[g] += 1
        if p == g != none_label:
            correct[p] += 1
    scores = _prf(sum(correct.values()), sum(guessed.values()), sum(expected.values()))
    per_relation = {r: _prf(correct[r], guessed[r], expected[r]) for r in sorted(set(guessed) | set(expected))}
    return {**scores, "per_relation": per_relation}


def _prf(correct: int, guessed: int, expected: int) -> dict[str, float]:
    # As the official scorer: precision 1.0 when nothing is guessed.
    precision = correct / guessed if guessed else 1.0
    recall = correct / expected if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
