"""Relation data: a sentence with a subject and an object span, and the relation between them.

A file is a JSON list of records (TACRED's `train.json`), or one record per
line (JSONL). A record is either TACRED's: `token` (the words), `subj_start`,
`subj_end`, `obj_start`, `obj_end` (word indices, ends inclusive) — PTB
bracket tokens (`-LRB-` …) become brackets and the words are joined by
spaces — or raw text: `text` with `subject` and `object` as [start, end]
character offsets (end exclusive). For training and scoring it also needs
`relation`; other fields (`id`, `subj_type`, `stanford_pos`, …) are ignored.
The subject is the head entity (`<ent>` … `<ent>`, `[MASK]`) and the object
the tail (`<ent2>` … `<ent2>`, `[MASK2]`), the tokenizer's
`entity_pair_classification` mode.

Scoring is the official TACRED scorer's: micro precision, recall and F1 over
the relations other than `no_relation`; a `no_relation` gold with another
prediction counts as a guess, a relation gold predicted `no_relation` as a
miss.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import DataError
from engine.metrics import precision_recall_f1
from luke_static.tokenizer import EntityTokenizer
from reader.text_file import json_records

_BRACKETS = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}
_SPAN_FIELDS = ("subj_start", "subj_end", "obj_start", "obj_end")


@dataclass
class RelationRecord:
    """One sentence: its text, the subject's and the object's character span in it (end exclusive), and
    the relation."""

    text: str
    subject: tuple[int, int]
    object: tuple[int, int]
    relation: str | None = None


def read_relations(path: str | Path, need_relation: bool = True) -> list[RelationRecord]:
    """Every record of a relation file; a record that cannot mean anything is an error naming it."""
    items = json_records(path, "relation file")
    records = [relation_record(item, f"{path}: record {i}", need_relation) for i, item in enumerate(items)]
    if not records:
        raise DataError(f"{path}: no records")
    return records


def relation_record(item, where: str, need_relation: bool = True) -> RelationRecord:
    """A TACRED record (`token`, `subj_start`, …) or a text record (`text`, `subject`, `object`) as a
    `RelationRecord`; `where` names it in errors."""
    if not isinstance(item, dict):
        raise DataError(f"{where}: not a JSON object")
    if need_relation and "relation" not in item:
        raise DataError(f"{where} has no relation")
    return _tacred_record(item, where) if "token" in item or "text" not in item else _text_record(item, where)


def _check_apart(subject: tuple[int, int], obj: tuple[int, int], where: str, unit: str, shown_end: int = 0) -> None:
    """Spans end exclusive; `shown_end` -1 names them with inclusive ends, as TACRED writes them."""
    (a, b), (c, d) = subject, obj
    if a < d and c < b:
        raise DataError(f"{where}: the subject {unit} ({a}, {b + shown_end}) and the object ({c}, {d + shown_end}) "
                        "overlap")


def _tacred_record(item: dict, where: str) -> RelationRecord:
    missing = [k for k in ("token", *_SPAN_FIELDS) if k not in item]
    if missing:
        raise DataError(f"{where} has no {', '.join(missing)} (a TACRED record; or give text, subject, object)")
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
    _check_apart(spans["subj"], spans["obj"], where, "tokens", shown_end=-1)
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + 1
    subject, obj = ((starts[s], starts[e - 1] + len(words[e - 1])) for s, e in spans.values())
    return RelationRecord(" ".join(words), subject, obj, item.get("relation"))


def _text_record(item: dict, where: str) -> RelationRecord:
    text = item["text"]
    spans = []
    for name in ("subject", "object"):
        span = item.get(name)
        if not (isinstance(span, (list, tuple)) and len(span) == 2 and all(isinstance(x, int) for x in span)):
            raise DataError(f"{where}: '{name}' must be [start, end], character offsets into text")
        if not 0 <= span[0] < span[1] <= len(text):
            raise DataError(f"{where}: {name} {list(span)} is not inside its {len(text)} characters")
        spans.append(tuple(span))
    _check_apart(spans[0], spans[1], where, "characters")
    return RelationRecord(text, spans[0], spans[1], item.get("relation"))


def relation_set(records: list[RelationRecord], none_label: str) -> list[str]:
    """`none_label` first, then the training records' other relations, sorted."""
    return [none_label, *sorted({r.relation for r in records} - {none_label})]


def encode_relations(records: list[RelationRecord], tokenizer: EntityTokenizer, labels: list[str] | None,
                     max_seq_length: int, path: str | Path = "records") -> dict[str, np.ndarray]:
    """Model inputs padded to `max_seq_length`, and `labels` [n] (the relations' indices) when given."""
    index = {label: i for i, label in enumerate(labels or [])}
    encodings, targets = [], np.zeros(len(records), np.int64)
    for i, record in enumerate(records):
        encoding = tokenizer.encode(record.text, entity_spans=[record.subject, record.object])
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
    # As the official scorer: precision 1.0 when nothing is guessed.
    scores = precision_recall_f1(sum(correct.values()), sum(guessed.values()), sum(expected.values()), 1.0)
    per_relation = {r: precision_recall_f1(correct[r], guessed[r], expected[r], 1.0)
                    for r in sorted(set(guessed) | set(expected))}
    return {**scores, "per_relation": per_relation}

