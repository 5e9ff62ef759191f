"""Answers to questions about a text with a question-answering export: `pipeline("question_answering", model)`.

    qa = luke_static.pipeline("question_answering", "output/squad/inference")
    qa(question="Where does Beyoncé live?", context="Beyoncé lives in Los Angeles.")
    # {'answer': 'Los Angeles', 'start': 17, 'end': 28, 'score': 0.93}

An input is a question with its context (keywords, as above, or a record
`{"question", "context"}`; an `id` is kept), and a file is a SQuAD 1.1 file
or a list of such records. The answer is the best span of the context as
training scored them (start + end logit over every window; `n_best`
candidates a window, at most `max_answer_length` tokens), with its character
offsets in the context and its probability among the candidates.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from engine.errors import ConfigError
from luke_static.pipelines import Pipeline, as_list
from luke_static.squad.answers import best_answers
from luke_static.squad.data import WindowSettings, build_features, feature_arrays, question_examples, read_squad
from reader.text_file import json_records


class QuestionAnsweringPipeline(Pipeline):
    """Start and end logits over the context's words → the best answer span (`LukeForQuestionAnswering`)."""

    task = "question_answering"
    head_task = "question_answering"
    input_format = ('a SQuAD 1.1 file (answers not needed), or a JSON list or JSONL of {"question", "context"} '
                    'records (an "id" is kept)')
    default_settings = {**dataclasses.asdict(WindowSettings()), "n_best": 20, "max_answer_length": 30}

    def __call__(self, inputs: dict | list | None = None, *, question: str | None = None,
                 context: str | None = None) -> dict | list[dict]:
        """The answer to one question (`question=`, `context=`, or a record), or a list of answers for a
        list of records."""
        if inputs is None:
            if question is None or context is None:
                raise ConfigError("question_answering(question=..., context=...): both are needed")
            inputs = {"question": question, "context": context}
        items, single = as_list(inputs, dict)
        examples = question_examples(items)
        results = []
        if examples:
            settings = {k: v for k, v in self.settings.items() if k not in ("n_best", "max_answer_length")}
            window = WindowSettings(**settings)
            features = build_features(examples, self.tokenizer, window, training=False)
            out = self.run(feature_arrays(features, window, self.tokenizer.pad_id, self.tokenizer.entity_pad_id))
            _, nbest = best_answers(examples, features, out["start_logits"], out["end_logits"],
                                    self.settings["n_best"], self.settings["max_answer_length"])
            for example in examples:
                best = nbest[example.qid][0]
                results.append({"answer": best["text"], "start": best["start"], "end": best["end"],
                                "score": round(best["probability"], 6)})
        return results[0] if single else results

    def read(self, path: str | Path) -> list[dict]:
        """A SQuAD file's questions, or a JSON list / JSONL file's records, as records with ids."""
        records = json_records(path, "input")
        if len(records) == 1 and isinstance(records[0], dict) and "data" in records[0]:
            return [{"id": e.qid, "question": e.question, "context": e.context,
                     "entities": [dataclasses.asdict(span) for span in e.entities],
                     "question_entities": [dataclasses.asdict(span) for span in e.question_entities]}
                    for e in read_squad(path)]
        question_examples(records, str(path))  # a bad record is named with its file before anything runs
        return [{**record, "id": str(record.get("id", i))} for i, record in enumerate(records)]

    def record_of(self, item: dict, result: dict) -> dict:
        return {"id": str(item.get("id", "")), "question": item["question"], **result}


PIPELINE = QuestionAnsweringPipeline
