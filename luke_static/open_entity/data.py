"""Open Entity data: `[{"sent", "start", "end", "labels"}, …]` with character offsets (or one record a line).

PTB bracket tokens (`-LRB-`, `-LSB-`, `-LCB-` and the right forms) are turned
into "(" and ")" first, with the offsets moved accordingly, as the LUKE
reference does. Each record becomes `<s> left <ent> mention <ent> right </s>`
with one `[MASK]` entity over the mention and its markers (the tokenizer's
`entity_classification` mode).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import DataError
from luke_static.tokenizer import EntityTokenizer
from reader.text_file import json_records

_BRACKETS = {"-LRB-": "(", "-LSB-": "(", "-LCB-": "(", "-RRB-": ")", "-RSB-": ")", "-RCB-": ")"}
_BRACKET_RE = re.compile("|".join(map(re.escape, _BRACKETS)))


@dataclass
class EntityRecord:
    text: str
    start: int
    end: int
    labels: list[str]


def normalize_brackets(text: str, start: int, end: int) -> tuple[str, int, int]:
    """Replaces bracket tokens, moving the character offsets with the text."""
    pieces, new_start, new_end, last = [], start, end, 0
    for match in _BRACKET_RE.finditer(text):
        pieces.append(text[last:match.start()])
        replacement = _BRACKETS[match.group()]
        pieces.append(replacement)
        delta = len(match.group()) - len(replacement)
        if match.end() <= start:
            new_start -= delta
        if match.end() <= end:
            new_end -= delta
        last = match.end()
    pieces.append(text[last:])
    return "".join(pieces), new_start, new_end


def read_records(path: str | Path, need_labels: bool = True) -> list[EntityRecord]:
    """Reads an Open Entity file (a JSON list, or JSONL); a record without its fields is an error naming it."""
    records = [entity_record(item, f"{path}: record {i}", need_labels)
               for i, item in enumerate(json_records(path, "Open Entity file"))]
    if not records:
        raise DataError(f"{path}: no records")
    return records


def entity_record(item, where: str, need_labels: bool = True) -> EntityRecord:
    """`{"sent" (or "text"), "start", "end", "labels"}` as an `EntityRecord`; `where` names it in errors."""
    if not isinstance(item, dict):
        raise DataError(f"{where}: not a JSON object")
    text = item.get("sent", item.get("text"))
    missing = [k for k in ("start", "end", *(("labels",) if need_labels else ())) if k not in item]
    if text is None or missing:
        raise DataError(f"{where} has no {', '.join((['sent'] if text is None else []) + missing)}")
    try:
        start, end = int(item["start"]), int(item["end"])
    except (TypeError, ValueError):
        raise DataError(f"{where}: start and end must be integers (character offsets)") from None
    text, start, end = normalize_brackets(text, start, end)
    if not 0 <= start < end <= len(text):
        raise DataError(f"{where}: span ({item['start']}, {item['end']}) is outside the sentence")
    return EntityRecord(text, start, end, list(item.get("labels", [])))


def encode_records(records: list[EntityRecord], tokenizer: EntityTokenizer, labels: list[str],
                   max_seq_length: int) -> tuple[dict[str, np.ndarray], int]:
    """(model inputs padded to `max_seq_length` with multi-hot `labels` [n, num_labels], how many
    records were cut to fit).

    A record longer than the model keeps its mention and as much context on
    both sides as fits (whole words, the shorter side first); a mention that
    alone does not fit is an error naming the record.
    """
    index = {label: i for i, label in enumerate(labels)}
    encodings, targets, cut = [], np.zeros((len(records), len(labels)), np.float32), 0
    for i, record in enumerate(records):
        encoding = _encode(tokenizer, record.text, record.start, record.end)
        if len(encoding.input_ids) > max_seq_length:
            encoding = _encode_around_mention(tokenizer, record, max_seq_length, i)
            cut += 1
        encodings.append(encoding)
        for label in record.labels:
            if label in index:
                targets[i, index[label]] = 1.0
    arrays = tokenizer.pad(encodings, max_length=max_seq_length, max_entity_length=1)
    arrays["labels"] = targets
    return arrays, cut


def _encode(tokenizer: EntityTokenizer, text: str, start: int, end: int):
    return tokenizer.encode(text, entity_spans=[_strip_span(text, start, end)])


def _encode_around_mention(tokenizer: EntityTokenizer, record: EntityRecord, max_seq_length: int, i: int):
    """The encoding of the longest context window (in words) around the mention that fits."""
    left = [m.start() for m in re.finditer(r"\S+", record.text[: record.start])]  # word starts, left side
    right = [m.end() for m in re.finditer(r"\S+", record.text[record.end:])]  # word ends, right side

    def window(n: int):
        # n context words: half each side, the rest to the side that has more.
        n_left = min(len(left), max(n // 2, n - len(right)))
        n_right = n - n_left
        a = left[len(left) - n_left] if n_left else record.start
        b = record.end + right[n_right - 1] if n_right else record.end
        return _encode(tokenizer, record.text[a:b], record.start - a, record.end - a)

    best, low, high = None, 0, len(left) + len(right)
    while low <= high:  # the longest window that fits (token counts grow with it)
        n = (low + high) // 2
        encoding = window(n)
        if len(encoding.input_ids) <= max_seq_length:
            best, low = encoding, n + 1
        else:
            high = n - 1
    if best is None:
        raise DataError(f"record {i}: its mention alone is {len(window(0).input_ids)} tokens, more than "
                        f"max_seq_length {max_seq_length}")
    return best


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without surrounding spaces (the data's spans sometimes include them)."""
    mention = text[start:end]
    return start + len(mention) - len(mention.lstrip()), end - len(mention) + len(mention.rstrip())


def label_set(records: list[EntityRecord]) -> list[str]:
    """The sorted labels of the training records (the reference's label order)."""
    return sorted({label for record in records for label in record.labels})

