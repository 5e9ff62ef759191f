"""SQuAD 1.1 data: questions, contexts, answers, entity annotations; doc-stride windows.

The official format, plus an optional hook for entities (the LUKE recipe
links Wikipedia mentions; supply them however you find them): a paragraph
may carry `"entities": [{"start": 10, "end": 21, "title": "Ana Ivanovic"}]`
(character offsets into its context) and a question
`"question_entities": [...]` (offsets into the question). `title` may be
omitted (the entity is then `[MASK]`). Without annotations the model is
fine-tuned on words only.

Each window is `<s> question </s></s> context[i : i+n] </s>` (question cut to
`max_query_length` tokens, windows `doc_stride` tokens apart, as long as
`max_seq_length` allows). A window remembers, for its context tokens, their
character offsets in the context (answers map back through them) and whether
it gives them their maximum context (BERT's rule: the window where the token
has the most tokens on its shorter side, ties to the longer window). In
training the answer's token span is the label; a window that misses it
points at `<s>` (position 0). Annotated entities inside a window become
entity inputs; with `max_entity_length` 0 the model uses words only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import DataError
from luke_static.tokenizer import EntityTokenizer


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
    answers: list[tuple[str, int]] = field(default_factory=list)  # (text, character start) located in the context
    entities: list[EntitySpan] = field(default_factory=list)
    question_entities: list[EntitySpan] = field(default_factory=list)
    # Answers whose `answer_start` missed their text: moved to the text's nearest occurrence (kept in
    # `answers`), or not in the context at all (kept here for scoring only: no span to train on).
    moved: int = 0
    unlocated: list[str] = field(default_factory=list)

    def gold_texts(self) -> list[str]:
        """Every gold answer's text (what the official evaluation compares with)."""
        return [text for text, _ in self.answers] + self.unlocated


def read_squad(path: str | Path, strict: bool = False) -> list[SquadExample]:
    """Every question of a SQuAD 1.1 file; a malformed record is an error naming the question.

    Real data has answers whose `answer_start` misses their text. As BERT's
    `run_squad.py` does with them, such an answer is not an error: it moves
    to the occurrence of its text nearest to `answer_start`, or, when the
    context does not contain the text, is kept for scoring but not trained
    on (`answer_report` summarises both). `strict`: any of them is an error.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    except FileNotFoundError:
        raise DataError(f"SQuAD file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
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
                examples.append(_example(qa, context, entities, path, strict))
    if not examples:
        raise DataError(f"{path}: no questions")
    return examples


def question_examples(records: list, where: str = "input") -> list[SquadExample]:
    """Questions to answer from `{"question", "context"}` records (an optional `id`, default the record's
    index, and `entities` / `question_entities` as a SQuAD paragraph and question carry them)."""
    examples = []
    for i, record in enumerate(records):
        if not (isinstance(record, dict) and isinstance(record.get("question"), str)
                and isinstance(record.get("context"), str)):
            raise DataError(f"{where}: record {i} needs 'question' and 'context' strings")
        qa = {**record, "id": str(record.get("id", i))}
        entities = _spans(record.get("entities", []), record["context"], where, f"record {i}")
        examples.append(_example(qa, record["context"], entities, where, strict=False))
    return examples


def _example(qa: dict, context: str, entities: list[EntitySpan], path, strict: bool) -> SquadExample:
    qid = qa.get("id")
    if not qid or "question" not in qa:
        raise DataError(f"{path}: a question without 'id' or 'question' ({str(qa)[:80]})")
    question_entities = _spans(qa.get("question_entities", []), qa["question"], path, f"question {qid}")
    example = SquadExample(qid, qa["question"], context, entities=entities, question_entities=question_entities)
    for answer in qa.get("answers", []):
        text, start = answer.get("text"), answer.get("answer_start")
        if not isinstance(text, str) or not isinstance(start, int):
            raise DataError(f"{path}: question {qid}: an answer needs 'text' and an integer 'answer_start'")
        if context[start:start + len(text)] == text:
            example.answers.append((text, start))
            continue
        if strict:
            raise DataError(f"{path}: question {qid}: answer_start {start} does not point at {text!r} "
                            f"(the context has {context[start:start + len(text)]!r} there; data.strict_answers)")
        nearest = _nearest_occurrence(context, text, start)
        if nearest is None:
            example.unlocated.append(text)
        else:
            example.answers.append((text, nearest))
            example.moved += 1
    return example


def _nearest_occurrence(context: str, text: str, start: int) -> int | None:
    found, at = None, context.find(text) if text else -1
    while at >= 0:
        if found is None or abs(at - start) < abs(found - start):
            found = at
        at = context.find(text, at + 1)
    return found


def answer_report(examples: list[SquadExample], limit: int | None = 5) -> str | None:
    """One line counting answers whose `answer_start` missed their text (see `read_squad`), with the
    first `limit` question ids of each kind (all of them with None); None when every answer was found."""
    moved = [e.qid for e in examples if e.moved]
    unlocated = [e.qid for e in examples if e.unlocated]
    if not moved and not unlocated:
        return None

    def ids(qids):
        shown = qids if limit is None else qids[:limit]
        return ", ".join(shown) + (", …" if len(shown) < len(qids) else "")

    parts = []
    if moved:
        n = sum(e.moved for e in examples)
        parts.append(f"{n:,} answer(s) with a wrong answer_start moved to the nearest occurrence of their text "
                     f"({len(moved):,} questions: {ids(moved)})")
    if unlocated:
        n = sum(len(e.unlocated) for e in examples)
        untrained = [e.qid for e in examples if e.unlocated and not e.answers]
        parts.append(f"{n:,} answer(s) whose text is not in the context, kept for scoring only "
                     f"({len(unlocated):,} questions: {ids(unlocated)}; {len(untrained):,} of them left with "
                     "no answer to train on, not trained on)")
    return "; ".join(parts)


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


# -- windows --------------------------------------------------------------------


@dataclass(frozen=True)
class WindowSettings:
    max_seq_length: int = 512
    doc_stride: int = 128
    max_query_length: int = 64
    max_entity_length: int = 0  # 0: words only
    max_mention_length: int = 30


@dataclass
class SquadFeature:
    example: int  # index of its example
    input_ids: list[int]
    context_start: int  # position of the window's first context token
    offsets: list[tuple[int, int]]  # character offsets in the context of the window's context tokens
    max_context: list[bool]
    window_start: int = 0  # index of the window's first token among the context's tokens
    start: int = 0
    end: int = 0
    answer_in_window: bool = False
    entity_ids: list[int] = field(default_factory=list)
    entity_positions: list[list[int]] = field(default_factory=list)


def build_features(examples: list[SquadExample], tokenizer: EntityTokenizer, settings: WindowSettings,
                   training: bool) -> list[SquadFeature]:
    """Every window of every example."""
    features = []
    for index, example in enumerate(examples):
        features += _example_features(index, example, tokenizer, settings, training)
    return features


def _example_features(index, example, tokenizer, settings, training) -> list[SquadFeature]:
    if training and example.unlocated and not example.answers:
        return []  # no span to learn from (BERT's run_squad skips it too)
    question = tokenizer.tokenize(example.question, _char_spans(example.question_entities))
    query_ids = question.ids[: settings.max_query_length]
    context = tokenizer.tokenize(example.context, _char_spans(example.entities))
    answer = _answer_tokens(example, context.offsets) if training and example.answers else None
    room = settings.max_seq_length - len(query_ids) - 4
    if room <= 0:
        raise ValueError(f"max_seq_length {settings.max_seq_length} leaves no room for the context")
    windows = _windows(len(context.ids), room, settings.doc_stride)
    context_start = len(query_ids) + 3
    features = []
    for w, (start, length) in enumerate(windows):
        ids = [tokenizer.cls_id, *query_ids, tokenizer.sep_id, tokenizer.sep_id,
               *context.ids[start:start + length], tokenizer.sep_id]
        max_context = [_is_max_context(windows, w, start + j) for j in range(length)]
        feature = SquadFeature(index, ids, context_start, context.offsets[start:start + length], max_context, start)
        if answer is not None and start <= answer[0] and answer[1] < start + length:
            feature.start = context_start + answer[0] - start
            feature.end = context_start + answer[1] - start
            feature.answer_in_window = True
        if settings.max_entity_length:
            _add_entities(feature, example, question, context, (start, length), len(query_ids), tokenizer, settings)
        features.append(feature)
    return features


def _windows(total: int, room: int, stride: int) -> list[tuple[int, int]]:
    windows, start = [], 0
    while True:
        length = min(room, total - start)
        windows.append((start, length))
        if start + length >= total:
            return windows
        start += min(length, stride)


def _is_max_context(windows: list[tuple[int, int]], current: int, position: int) -> bool:
    best, best_score = None, None
    for i, (start, length) in enumerate(windows):
        end = start + length - 1
        if start <= position <= end:
            score = min(position - start, end - position) + 0.01 * length
            if best_score is None or score > best_score:
                best, best_score = i, score
    return best == current


def _answer_tokens(example: SquadExample, offsets) -> tuple[int, int] | None:
    """First and last context token overlapping the first answer's characters."""
    text, char_start = example.answers[0]
    char_end = char_start + len(text)
    inside = [i for i, (a, b) in enumerate(offsets) if b > char_start and a < char_end]
    return (inside[0], inside[-1]) if inside else None


def _char_spans(entities: list[EntitySpan]):
    return [(e.start, e.end) for e in entities] or None


def _add_entities(feature, example, question, context, window, query_length, tokenizer, settings) -> None:
    start, length = window
    mentions = []
    for entity, (a, b) in zip(example.question_entities, question.spans or []):
        if b <= query_length:
            mentions.append((entity, a + 1, b + 1))
    for entity, (a, b) in zip(example.entities, context.spans or []):
        if start <= a and b <= start + length:
            shift = feature.context_start - start
            mentions.append((entity, a + shift, b + shift))
    for entity, a, b in mentions[: settings.max_entity_length]:
        title_id = tokenizer.entity_vocab.get(entity.title, tokenizer.entity_unk_id) if entity.title else None
        feature.entity_ids.append(tokenizer.entity_mask_id if title_id is None else title_id)
        positions = list(range(a, b))[: settings.max_mention_length]
        feature.entity_positions.append(positions + [-1] * (settings.max_mention_length - len(positions)))


def feature_arrays(features: list[SquadFeature], settings: WindowSettings, pad_id: int,
                   entity_pad_id: int) -> dict[str, np.ndarray]:
    """Model inputs for a list of features, padded to `max_seq_length` (and `max_entity_length`)."""
    n, S = len(features), settings.max_seq_length
    arrays = {"input_ids": np.full((n, S), pad_id, np.int64), "attention_mask": np.zeros((n, S), np.int64),
              "token_type_ids": np.zeros((n, S), np.int64), "start_positions": np.zeros(n, np.int64),
              "end_positions": np.zeros(n, np.int64)}
    if settings.max_entity_length:
        N, M = settings.max_entity_length, settings.max_mention_length
        arrays.update({"entity_ids": np.full((n, N), entity_pad_id, np.int64),
                       "entity_attention_mask": np.zeros((n, N), np.int64),
                       "entity_token_type_ids": np.zeros((n, N), np.int64),
                       "entity_position_ids": np.full((n, N, M), -1, np.int64)})
    for i, f in enumerate(features):
        arrays["input_ids"][i, : len(f.input_ids)] = f.input_ids
        arrays["attention_mask"][i, : len(f.input_ids)] = 1
        arrays["start_positions"][i], arrays["end_positions"][i] = f.start, f.end
        if settings.max_entity_length and f.entity_ids:
            k = len(f.entity_ids)
            arrays["entity_ids"][i, :k] = f.entity_ids
            arrays["entity_attention_mask"][i, :k] = 1
            arrays["entity_position_ids"][i, :k] = f.entity_positions
    return arrays


def gold_articles(examples: list[SquadExample]) -> list[dict]:
    """The examples' gold answers in the official file's `data` layout (what `evaluate` reads)."""
    return [{"paragraphs": [{"qas": [{"id": e.qid, "answers": [{"text": t} for t in e.gold_texts()]}
                                     for e in examples]}]}]
