"""SQuAD 1.1 JSON: questions, contexts, answers and optional entity annotations.

The official format, plus an optional hook for entities (the LUKE recipe
links Wikipedia mentions; supply them however you find them): a paragraph
may carry `"entities": [{"start": 10, "end": 21, "title": "Ana Ivanovic"}]`
(character offsets into its context) and a question
`"question_entities": [...]` (offsets into the question). `title` may be
omitted (the entity is then `[MASK]`). Without annotations the model is
fine-tuned on words only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import DataError


@dataclass
class EntitySpan:
    start: int
    end: int
    title: str | None = None


@dataclass
class SquadExample:
    qid: str
    question: str
    context: str
    answers: list[tuple[str, int]] = field(default_factory=list)  # (text, character start)
    entities: list[EntitySpan] = field(default_factory=list)
    question_entities: list[EntitySpan] = field(default_factory=list)


def read_squad(path: str | Path) -> list[SquadExample]:
    """Every question of a SQuAD 1.1 file; a malformed record is an error naming the question."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    except FileNotFoundError:
        raise DataError(f"SQuAD file not found: {path}") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise DataError(f"{path}: not a SQuAD file (a JSON object with a 'data' list)") from None
    examples = []
    for article in data:
        for paragraph in article.get("paragraphs", []):
            context = paragraph.get("context")
            if not isinstance(context, str):
                raise DataError(f"{path}: a paragraph of '{article.get('title', '?')}' has no context")
            entities = _spans(paragraph.get("entities", []), context, path, "paragraph")
            for qa in paragraph.get("qas", []):
                examples.append(_example(qa, context, entities, path))
    if not examples:
        raise DataError(f"{path}: no questions")
    return examples


def _example(qa: dict, context: str, entities: list[EntitySpan], path) -> SquadExample:
    qid = qa.get("id")
    if not qid or "question" not in qa:
        raise DataError(f"{path}: a question without 'id' or 'question' ({str(qa)[:80]})")
    answers = []
    for answer in qa.get("answers", []):
        text, start = answer.get("text"), answer.get("answer_start")
        if not isinstance(text, str) or not isinstance(start, int):
            raise DataError(f"{path}: question {qid}: an answer needs 'text' and an integer 'answer_start'")
        if context[start:start + len(text)] != text:
            raise DataError(f"{path}: question {qid}: answer_start {start} does not point at {text!r} "
                            f"(the context has {context[start:start + len(text)]!r} there)")
        answers.append((text, start))
    question_entities = _spans(qa.get("question_entities", []), qa["question"], path, f"question {qid}")
    return SquadExample(qid, qa["question"], context, answers, entities, question_entities)


def _spans(records: list, text: str, path, where: str) -> list[EntitySpan]:
    spans = []
    for record in records:
        try:
            span = EntitySpan(int(record["start"]), int(record["end"]), record.get("title"))
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path}: {where}: an entity needs integer 'start' and 'end' ({record})") from None
        if not 0 <= span.start < span.end <= len(text):
            raise DataError(f"{path}: {where}: entity span ({span.start}, {span.end}) is outside the text")
        spans.append(span)
    return spans
