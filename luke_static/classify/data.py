"""Text classification data: a text (or a text pair) and its label, from TSV, CSV or JSON Lines.

A file's format is its extension: `.tsv` (tab-separated, no quoting: GLUE's
files), `.csv` (RFC 4180 quoting), `.jsonl` / `.json` (records; a JSON list
too), `.txt` (one text a line, no label: predictor input only). TSV and CSV
files name their columns in a header row; `header: false` files name them
by position (`text_column: "0"`). The columns are the config's
`text_column`, `text_pair_column` (optional: "" for single texts) and
`label_column`; other columns are ignored.

Blank lines are skipped and counted. A row with another number of fields
than the header, an empty text, or (in dev and test) a label the training
data never had is an error naming the file, the line and the field.

The labels are the training file's, in sorted order (numbers by value), so
the classifier's outputs do not depend on the order of the rows; the order
is saved in the export's task record.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import DataError
from engine.metrics import precision_recall_f1
from reader.text_file import json_records, numbered_lines

FORMATS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".txt": "txt"}


@dataclass(frozen=True)
class Columns:
    """Which fields hold the text, the second text and the label, and whether a header names them."""

    text: str = "text"
    text_pair: str = ""  # "": single texts
    label: str = "label"
    header: bool = True  # TSV/CSV: the first row names the columns (else columns are 0-based positions)


@dataclass
class Example:
    """One row: its text (and second text), its label if it has one, and where it was read."""

    text: str
    text_pair: str | None
    label: str | None
    where: str  # "FILE:LINE"


@dataclass
class ReadReport:
    """What reading skipped, for the run's notes."""

    blank_lines: int = 0


def file_format(path: str | Path) -> str:
    """tsv, csv, jsonl or txt, from the file's extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"{path}: cannot tell the format from the extension {suffix or '(none)'} "
                        f"(one of {', '.join(FORMATS)})")
    return FORMATS[suffix]


def read_examples(path: str | Path, columns: Columns, need_label: bool = True,
                  report: ReadReport | None = None) -> list[Example]:
    """The examples of a file (see the module docstring); `need_label`: a row without one is an error."""
    report = report if report is not None else ReadReport()
    kind = file_format(path)
    if kind == "txt":
        if need_label:
            raise DataError(f"{path}: a .txt file holds texts without labels (use .tsv, .csv or .jsonl)")
        rows = _text_lines(path, report)
    elif kind == "jsonl":
        rows = _json_rows(path, report)
    else:
        rows = _delimited_rows(path, kind, columns.header, report)
    examples = [_example(fields, where, columns, need_label) for where, fields in rows]
    if not examples:
        raise DataError(f"{path}: no examples")
    return examples


def _text_lines(path, report: ReadReport):
    for lineno, line in numbered_lines(path, "text file"):
        if line.strip():
            yield f"{path}:{lineno}", {"text": line}
        else:
            report.blank_lines += 1


def _json_rows(path, report: ReadReport):
    lines = numbered_lines(path, "data file")
    for lineno, line in lines:
        if not line.strip():
            report.blank_lines += 1
            continue
        if line.lstrip().startswith("["):  # a JSON list: records named by their index
            lines.close()
            for i, record in enumerate(json_records(path, "data file")):
                yield f"{path}: record {i}", _json_object(record, f"{path}: record {i}")
            return
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: not a JSON record: {exc}") from None
        yield f"{path}:{lineno}", _json_object(record, f"{path}:{lineno}")


def _json_object(record, where: str) -> dict:
    if not isinstance(record, dict):
        raise DataError(f"{where}: not a JSON object")
    return {k: v if isinstance(v, str) or v is None else json.dumps(v) if isinstance(v, (list, dict)) else str(v)
            for k, v in record.items()}


def _delimited_rows(path, kind: str, header: bool, report: ReadReport):
    names = None
    for lineno, line in numbered_lines(path, "data file"):
        if not line.strip():
            report.blank_lines += 1
            continue
        fields = line.split("\t") if kind == "tsv" else _csv_fields(line, path, lineno)
        if names is None and header:
            names = fields
            continue
        expected = len(names) if names is not None else None
        if expected is not None and len(fields) != expected:
            raise DataError(f"{path}:{lineno}: {len(fields)} fields where the header has {expected} "
                            f"({', '.join(names)})")
        yield f"{path}:{lineno}", dict(zip(names, fields)) if names else {str(i): f for i, f in enumerate(fields)}


def _csv_fields(line: str, path, lineno: int) -> list[str]:
    # A quoted field may not span lines here: one row a line keeps every error on its line.
    try:
        rows = list(csv.reader(io.StringIO(line), strict=True))
    except csv.Error as exc:
        raise DataError(f"{path}:{lineno}: not a CSV row ({exc})") from None
    return rows[0] if rows else []


def _example(fields: dict, where: str, columns: Columns, need_label: bool) -> Example:
    text = _field(fields, columns.text, where, "text")
    pair = _field(fields, columns.text_pair, where, "text_pair") if columns.text_pair else None
    label = fields.get(columns.label)
    if need_label and (label is None or not label.strip()):
        raise DataError(f"{where}: no label (column '{columns.label}')")
    return Example(text, pair, label.strip() if label else None, where)


def _field(fields: dict, column: str, where: str, role: str) -> str:
    if column not in fields:
        known = ", ".join(repr(k) for k in fields)
        raise DataError(f"{where}: no column '{column}' (the {role}; the row has {known})")
    value = fields[column]
    if value is None or not value.strip():
        raise DataError(f"{where}: empty text (column '{column}')")
    return value


def label_set(examples: list[Example]) -> list[str]:
    """The labels of the training examples, sorted (numbers by value, then the rest by name)."""
    def key(label: str):
        try:
            return (0, float(label), "")
        except ValueError:
            return (1, 0.0, label)

    return sorted({e.label for e in examples}, key=key)


def encode_examples(examples: list[Example], tokenizer, labels: list[str] | None,
                    max_seq_length: int) -> tuple[dict[str, np.ndarray], int]:
    """Word inputs padded to the longest row (at most `max_seq_length`; longer rows are cut, the longer
    text of a pair first) and `labels` [n] when given; returns (arrays, rows cut)."""
    index = {label: i for i, label in enumerate(labels or [])}
    encodings, cut = [], 0
    targets = np.zeros(len(examples), np.int64)
    for i, example in enumerate(examples):
        full = tokenizer.encode(example.text, text_pair=example.text_pair)
        if len(full.input_ids) > max_seq_length:
            cut += 1
            full = tokenizer.encode(example.text, text_pair=example.text_pair, max_length=max_seq_length)
        encodings.append(full)
        if labels is not None and example.label is not None:
            if example.label not in index:
                raise DataError(f"{example.where}: label '{example.label}' is not among the {len(labels)} labels "
                                f"of the training data ({', '.join(labels[:8])}{', …' if len(labels) > 8 else ''})")
            targets[i] = index[example.label]
    arrays = tokenizer.pad(encodings)
    words = {name: arrays[name] for name in ("input_ids", "attention_mask", "token_type_ids")}
    words["labels"] = targets
    return words, cut


def classification_scores(predicted: np.ndarray, gold: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, macro-averaged F1 (over the labels in the gold or predicted rows, as scikit-learn's
    default) and per-label precision, recall and F1."""
    per_label = {}
    for i in sorted(set(predicted.tolist()) | set(gold.tolist())):
        correct = int(((predicted == i) & (gold == i)).sum())
        per_label[labels[i]] = precision_recall_f1(correct, int((predicted == i).sum()), int((gold == i).sum()))
    macro = float(np.mean([m["f1"] for m in per_label.values()])) if per_label else 0.0
    return {"accuracy": float((predicted == gold).mean()) if len(gold) else 0.0, "macro_f1": macro,
            "per_label": per_label}
