"""Reading UTF-8 text files line by line, and JSON record files, with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from engine.errors import DataError


def numbered_lines(path: str | Path, what: str = "file") -> Iterator[tuple[int, str]]:
    """Yields (1-based line number, line without its newline); bad bytes are a DataError naming file:line."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{what} not found: {path}") from None
    with f:
        for lineno, raw in enumerate(f, start=1):
            try:
                # A file saved on Windows often starts with a byte-order mark: not part of the text.
                yield lineno, raw.decode("utf-8-sig" if lineno == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def json_records(path: str | Path, what: str) -> list:
    """The records of a file holding a JSON list, one JSON object, or one JSON record per line (JSONL,
    blank lines skipped); errors name the file (and the line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{what} not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if text.lstrip().startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON: {exc}") from None
    if text.lstrip().startswith("{"):
        try:  # one object over several lines (a SQuAD file, say) is one record
            return [json.loads(text)]
        except json.JSONDecodeError:
            pass  # one object a line
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not a JSON record: {exc}") from None
    return items
