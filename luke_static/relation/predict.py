"""The relation between two entities of a sentence with a relation export: `pipeline("relation", model)`.

    relation = luke_static.pipeline("relation", "output/relation/inference")
    relation("Beyoncé lives in Los Angeles.", subject=(0, 7), object=(17, 28))
    # {'label': 'per:cities_of_residence', 'score': 0.91, 'subject': 'Beyoncé', 'object': 'Los Angeles'}

An input is a text with the subject's and the object's character spans
(end exclusive), as above or as a record `{"text", "subject", "object"}`, or
a TACRED record (`token`, `subj_start`, `subj_end`, `obj_start`, `obj_end`,
word indices with inclusive ends). The result is the most probable relation
with its probability (`no_relation` among them).
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import ConfigError
from luke_static.pipelines import Pipeline, as_list, softmax
from luke_static.relation.data import encode_relations, relation_record
from reader.text_file import json_records


class RelationPipeline(Pipeline):
    """The subject's and object's entity states → the relation (`LukeForEntityPairClassification`)."""

    task = "relation"
    head_task = "entity_pair_classification"
    tokenizer_mode = "entity_pair_classification"
    input_format = ('a JSON list or JSONL of records: {"text", "subject": [start, end], "object": [start, end]} '
                    "(character offsets, end exclusive), or TACRED's (token, subj_start, subj_end, obj_start, "
                    "obj_end: word indices, ends inclusive)")
    default_settings = {"max_seq_length": 256}
    batch_size = 16

    def __call__(self, inputs: str | dict | list, subject: tuple[int, int] | None = None,
                 object: tuple[int, int] | None = None) -> dict | list[dict]:  # noqa: A002 - HF's word
        """The relation of one input (a text with `subject=` and `object=` spans, or a record), or a list
        of results for a list of records."""
        if isinstance(inputs, str):
            if subject is None or object is None:
                raise ConfigError("relation(text, subject=(start, end), object=(start, end)): character spans "
                                  "of both entities are needed")
            inputs = {"text": inputs, "subject": list(subject), "object": list(object)}
        items, single = as_list(inputs, dict)
        records = [relation_record(item, f"input {i}", need_relation=False) for i, item in enumerate(items)]
        results = []
        if records:
            arrays = encode_relations(records, self.tokenizer, None, self.settings["max_seq_length"], "input")
            for record, row in zip(records, softmax(self.run(arrays)["logits"])):
                best = int(row.argmax())
                results.append({"label": self.labels[best], "score": round(float(row[best]), 6),
                                "subject": record.text[slice(*record.subject)],
                                "object": record.text[slice(*record.object)]})
        return results[0] if single else results

    def read(self, path: str | Path) -> list[dict]:
        records = json_records(path, "input")
        for i, record in enumerate(records):  # a bad record is named with its file before anything runs
            relation_record(record, f"{path}: record {i}", need_relation=False)
        return records

    def record_of(self, item: dict, result: dict) -> dict:
        keep = {k: item[k] for k in ("id",) if k in item}
        return {**keep, **result}


PIPELINE = RelationPipeline
