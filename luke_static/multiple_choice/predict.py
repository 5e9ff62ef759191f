"""The best of several choices with a multiple-choice export: `pipeline("multiple_choice", model)`.

    choose = luke_static.pipeline("multiple_choice", "models/luke-swag-export")
    choose("A man sits at a piano.", choices=["He plays a tune.", "He eats the piano."])
    # {'choice': 0, 'text': 'He plays a tune.', 'score': 0.93, 'scores': [0.93, 0.07]}

Serves converted HF `LukeForMultipleChoice` checkpoints (SWAG-style tasks).
Each choice is encoded with the prompt as a text pair (`<s> prompt </s></s>
choice </s>`), as HF's multiple-choice examples do, and scored by the
pooler and `classifier`; the scores are a softmax over the input's choices.
An input is a prompt with `choices=`, or a record `{"prompt" (or
"question"), "choices": [...]}`; inputs may have different numbers of choices.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import DataError
from luke_static.pipelines import Pipeline, as_list, softmax
from reader.text_file import json_records

WORDS = ("input_ids", "attention_mask", "token_type_ids")


class MultipleChoicePipeline(Pipeline):
    """Each (prompt, choice) pair's pooled state → one score; the best choice (`LukeForMultipleChoice`)."""

    task = "multiple_choice"
    head_task = "multiple_choice"
    input_format = 'a JSON list or JSONL of records {"prompt" (or "question"), "choices": [text, ...]}'
    default_settings = {"max_seq_length": 512}

    def __call__(self, inputs: str | dict | list, choices: list[str] | None = None) -> dict | list[dict]:
        """The best choice of one input (a prompt with `choices=`, or a record), or a list of results."""
        if isinstance(inputs, str):
            inputs = {"prompt": inputs, "choices": choices}
        items, single = as_list(inputs, dict)
        questions = [_question(item, f"input {i}") for i, item in enumerate(items)]
        results: list[dict | None] = [None] * len(questions)
        for count in sorted({len(c) for _, c in questions}):  # one program run per number of choices
            members = [k for k, (_, c) in enumerate(questions) if len(c) == count]
            logits = self.run(self._arrays([questions[k] for k in members]))["logits"]
            for k, row in zip(members, softmax(logits)):
                best = int(row.argmax())
                results[k] = {"choice": best, "text": questions[k][1][best], "score": round(float(row[best]), 6),
                              "scores": [round(float(p), 6) for p in row]}
        return results[0] if single else results

    def _arrays(self, questions: list[tuple[str, list[str]]]) -> dict[str, np.ndarray]:
        """[B, C, L] word inputs, every (prompt, choice) pair padded to the longest."""
        encodings = [self.tokenizer.encode(prompt, text_pair=choice, max_length=self.settings["max_seq_length"])
                     for prompt, choices in questions for choice in choices]
        flat = self.tokenizer.pad(encodings)
        shape = (len(questions), len(questions[0][1]), -1)
        return {name: flat[name].reshape(shape) for name in WORDS}

    def read(self, path: str | Path) -> list[dict]:
        records = json_records(path, "input")
        for i, record in enumerate(records):  # a bad record is named with its file before anything runs
            _question(record, f"{path}: record {i}")
        return records

    def record_of(self, item: dict, result: dict) -> dict:
        keep = {k: item[k] for k in ("id",) if k in item}
        return {**keep, **result}


def _question(item, where: str) -> tuple[str, list[str]]:
    if not isinstance(item, dict):
        raise DataError(f"{where}: not a JSON object")
    prompt = item.get("prompt", item.get("question"))
    choices = item.get("choices")
    if not isinstance(prompt, str) or not prompt.strip():
        raise DataError(f"{where}: no prompt (a non-empty 'prompt' or 'question')")
    if not (isinstance(choices, list) and len(choices) >= 2 and all(isinstance(c, str) and c.strip() for c in choices)):
        raise DataError(f"{where}: 'choices' must be a list of two or more non-empty texts")
    return prompt, choices


PIPELINE = MultipleChoicePipeline
