"""Labels for texts with a text-classification export: `pipeline("text-classification", model)`.

    classify = luke_static.pipeline("text-classification", "output/classify/inference")
    classify("The service was quick and friendly.")
    # {'label': 'positive', 'score': 0.97}
    classify(("A man is playing a guitar.", "Someone plays music."))  # a text pair
    # {'label': 'entailment', 'score': 0.88}

An input is a text, a (text, text_pair) tuple, or a record with the columns
the run was trained on (`{"text": …, "text_pair": …}` by default); a list
of them gives a list of results. The result is the most probable label with
its probability (softmax); a multi-label export (HF's
`multi_label_classification`) gives every label whose probability is above
0.5, and a regression export the value (`{"score"}`). A file is read as the
run read its data: TSV/CSV with its header, JSONL, or `.txt` (one text a line).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import DataError
from luke_static.classify.data import Columns, Example, encode_examples, read_examples
from luke_static.pipelines import Pipeline, as_list, softmax


class TextClassificationPipeline(Pipeline):
    """The `<s>` state through the pooler → a label (`LukeForSequenceClassification`)."""

    task = "text_classification"
    head_task = "sequence_classification"
    input_format = ("texts, as the run read its data: .tsv/.csv with a header naming the columns, .jsonl "
                    'records ({"text", "text_pair"} or the run\'s columns), or .txt (one text a line)')
    default_settings = {"max_seq_length": 512, "text_column": "text", "text_pair_column": "text_pair", "header": True}
    batch_size = 16

    def __call__(self, inputs: str | tuple | dict | list) -> dict | list[dict]:
        """The label of one text (a string, a (text, text_pair) tuple or a record), or a list of results."""
        items, single = as_list(inputs, (str, tuple, dict))
        results = self._classify([self._example(item, f"input {i}") for i, item in enumerate(items)])
        return results[0] if single else results

    def _classify(self, examples: list[Example]) -> list[dict]:
        if not examples:
            return []
        arrays, _ = encode_examples(examples, self.tokenizer, None, self.settings["max_seq_length"])
        return [self._result(row) for row in self.run(arrays)["logits"]]

    def _example(self, item, where: str) -> Example:
        columns = self.columns
        if isinstance(item, str):
            item = {columns.text: item}
        elif isinstance(item, tuple):
            if len(item) != 2:
                raise DataError(f"{where}: a tuple input is (text, text_pair), got {len(item)} items")
            item = {columns.text: item[0], columns.text_pair or "text_pair": item[1]}
        pair = columns.text_pair if columns.text_pair in item else ""
        text = item.get(columns.text)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: no text (a non-empty '{columns.text}')")
        return Example(text, item[pair] if pair else None, None, where)

    @property
    def columns(self) -> Columns:
        s = self.settings
        return Columns(s["text_column"], s["text_pair_column"], "label", s["header"])

    def _result(self, logits: np.ndarray) -> dict:
        problem = self.record.problem_type or ("regression" if len(self.labels) == 1
                                               else "single_label_classification")
        if problem == "regression":
            return {"score": round(float(logits[0]), 6)}
        if problem == "multi_label_classification":
            probability = 1.0 / (1.0 + np.exp(-logits))
            chosen = [i for i in np.argsort(-probability) if probability[i] > 0.5]
            return {"labels": [{"label": self.labels[i], "score": round(float(probability[i]), 6)} for i in chosen]}
        probability = softmax(logits)
        best = int(probability.argmax())
        return {"label": self.labels[best], "score": round(float(probability[best]), 6)}

    def read(self, path: str | Path) -> list[Example]:
        return read_examples(path, self.columns, need_label=False)

    def records(self, path: str | Path):
        examples = self.read(path)
        for example, result in zip(examples, self._classify(examples)):
            yield self.record_of(example, result)

    def record_of(self, item: Example, result: dict) -> dict:
        text = {"text": item.text, **({"text_pair": item.text_pair} if item.text_pair is not None else {})}
        return {**text, **result}


PIPELINE = TextClassificationPipeline
