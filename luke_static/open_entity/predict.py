"""The types of an entity mention with an entity-typing export: `pipeline("entity_typing", model)`.

    typing = luke_static.pipeline("entity_typing", "output/open_entity/inference")
    typing("Beyoncé lives in Los Angeles.", span=(0, 7))
    # [{'label': 'person', 'score': 0.98}, {'label': 'artist', 'score': 0.71}]

An input is a text with the mention's character span (end exclusive), as
above or as a record `{"sent" (or "text"), "start", "end"}` (Open Entity's).
The result lists every type whose logit is above 0 (probability above 0.5,
Open Entity's multi-label decision), most probable first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import ConfigError
from luke_static.open_entity.data import encode_records, entity_record
from luke_static.pipelines import Pipeline, as_list
from reader.text_file import json_records


class EntityTypingPipeline(Pipeline):
    """The mention's entity state → independent type probabilities (`LukeForEntityClassification`)."""

    task = "entity_typing"
    head_task = "entity_classification"
    tokenizer_mode = "entity_classification"
    input_format = ('a JSON list or JSONL of records {"sent" (or "text"), "start", "end"}: the mention\'s '
                    "character offsets, end exclusive")
    default_settings = {"max_seq_length": 256}
    batch_size = 16

    def __call__(self, inputs: str | dict | list, span: tuple[int, int] | None = None) -> list:
        """The types of one mention (a text with `span=`, or a record), or a list of type lists."""
        if isinstance(inputs, str):
            if span is None:
                raise ConfigError("entity_typing(text, span=(start, end)): the mention's character span is needed")
            inputs = {"text": inputs, "start": span[0], "end": span[1]}
        items, single = as_list(inputs, dict)
        records = [entity_record(item, f"input {i}", need_labels=False) for i, item in enumerate(items)]
        results = []
        if records:
            arrays, _ = encode_records(records, self.tokenizer, self.labels, self.settings["max_seq_length"])
            for row in 1.0 / (1.0 + np.exp(-self.run(arrays)["logits"])):
                chosen = np.argsort(-row)[: int((row > 0.5).sum())]
                results.append([{"label": self.labels[j], "score": round(float(row[j]), 6)} for j in chosen])
        return results[0] if single else results

    def read(self, path: str | Path) -> list[dict]:
        records = json_records(path, "input")
        for i, record in enumerate(records):  # a bad record is named with its file before anything runs
            entity_record(record, f"{path}: record {i}", need_labels=False)
        return records

    def record_of(self, item: dict, result: list) -> dict:
        text = item.get("sent", item.get("text", ""))
        keep = {k: item[k] for k in ("id",) if k in item}
        return {**keep, "mention": text[item["start"]:item["end"]], "start": item["start"], "end": item["end"],
                "types": result}


PIPELINE = EntityTypingPipeline
