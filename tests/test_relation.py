"""TACRED-style relation classification end to end on a tiny random LUKE; the scorer; bad records."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers")

from engine.config import load_config  # noqa: E402
from engine.errors import DataError  # noqa: E402
from engine.trainer import Trainer  # noqa: E402
from luke_static.relation.data import read_relations, tacred_scores  # noqa: E402
from luke_static.relation.job import RelationRunConfig, RelationTraining  # noqa: E402

from helpers.luke import PEOPLE, relation_records, write_luke_model  # noqa: E402
from helpers.programs import assert_backends_agree, predict_records  # noqa: E402


def test_the_scorer_is_tacreds():
    gold = ["no_relation", "no_relation", "a", "a", "b", "b"]
    predicted = ["no_relation", "a", "a", "no_relation", "b", "a"]
    # guessed: a ×3, b ×1; gold: a ×2, b ×2; correct: a 1, b 1.
    scores = tacred_scores(predicted, gold)
    assert scores["precision"] == pytest.approx(2 / 4) and scores["recall"] == pytest.approx(2 / 4)
    assert scores["per_relation"]["a"] == pytest.approx({"precision": 1 / 3, "recall": 1 / 2, "f1": 0.4})
    assert tacred_scores(["no_relation"], ["a"])["precision"] == 1.0  # nothing guessed: the scorer's 1.0


def test_jsonl_and_list_files_read_alike(tmp_path):
    data = relation_records(6, seed=1)
    (tmp_path / "a.json").write_text(json.dumps(data))
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in data) + "\n\n")
    a, b = read_relations(tmp_path / "a.json"), read_relations(tmp_path / "a.jsonl")
    assert a == b and a[0].text.split()[0] in ("(", *[w.split()[0] for w in PEOPLE])


@pytest.mark.parametrize("change, message", [
    ({"obj_end": 99}, r"record 0: obj_start/obj_end \(\d+, 99\) are not inside its \d+ tokens"),
    ({"obj_start": 0, "obj_end": 1, "subj_start": 1, "subj_end": 2},
     r"record 0: the subject tokens \(1, 2\) and the object"),
    ({"subj_start": "x"}, "must be integers"),
])
def test_bad_records_are_named(tmp_path, change, message):
    bad = relation_records(1, seed=2)[0]
    bad.update(change)
    (tmp_path / "bad.json").write_text(json.dumps([bad]))
    with pytest.raises(DataError, match=message):
        read_relations(tmp_path / "bad.json")
    del bad["relation"]
    empty = {**relation_records(1, seed=2)[0], "relation": None} | {"token": []}
    (tmp_path / "bad.json").write_text(json.dumps([empty]))
    with pytest.raises(DataError, match="not inside its 0 tokens"):
        read_relations(tmp_path / "bad.json")


@pytest.mark.slow
def test_a_tiny_model_learns_the_relations_and_the_export_agrees(tmp_path, static_scope):
    from luke_static import pipeline

    luke = write_luke_model(tmp_path / "luke")
    train, dev = tmp_path / "train.json", tmp_path / "dev.jsonl"
    train.write_text(json.dumps(relation_records(60, seed=3), ensure_ascii=False))
    dev_records = relation_records(24, seed=4)
    dev.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in dev_records))
    items = {"data.train": train, "data.dev": dev, "data.test": dev, "data.max_seq_length": 48,
             "model.luke": luke, "train.output_dir": tmp_path / "run", "train.batch_size": 8, "train.max_steps": 120,
             "train.eval_every": 40, "train.log_every": 40, "train.save_every": 0, "optim.learning_rate": 3e-3,
             "optim.accumulate_steps": 1, "optim.warmup_ratio": 0.0, "train.export_onnx": True}
    cfg = load_config(RelationRunConfig, "configs/relation.yaml", [f"{k}={v}" for k, v in items.items()])
    job = RelationTraining(cfg)
    metrics = Trainer(job, cfg.train, cfg.optim, cfg.runtime).fit()
    assert metrics["best_f1"] > 0.9, metrics
    test = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert test["f1"] == pytest.approx(metrics["best_f1"])  # test = dev, scored with the best parameters
    assert set(test["per_relation"]) == {"per:cities_of_residence", "per:origin"}
    export = tmp_path / "run" / "inference"
    records = predict_records(export, dev, tmp_path, "--backend", "paddle")
    predicted = [r["label"] for r in records]
    import paddle

    logits = job.decode(paddle.static.Executor(paddle.CPUPlace()), job.splits["dev"])["logits"]
    assert predicted == [job.labels[i] for i in logits.argmax(-1)]  # the export predicts what the program does
    assert tacred_scores(predicted, [r["relation"] for r in dev_records])["f1"] == pytest.approx(test["f1"])
    assert_backends_agree(export / job.inference_prefix, job.splits["dev"])
    assert [r["label"] for r in predict_records(export, dev, tmp_path, "--backend", "onnxruntime")] == predicted
    # From Python, on raw text with character spans: the same relation as the TACRED record.
    first = dev_records[1]  # no bracket tokens
    words = first["token"]
    starts = [len(" ".join(words[:i])) + (1 if i else 0) for i in range(len(words))]
    subject = (starts[first["subj_start"]], starts[first["subj_end"]] + len(words[first["subj_end"]]))
    obj = (starts[first["obj_start"]], starts[first["obj_end"]] + len(words[first["obj_end"]]))
    found = pipeline("relation", export)(" ".join(words), subject=subject, object=obj)
    assert found["label"] == predicted[1] and found["subject"] == records[1]["subject"]


def test_an_unknown_relation_at_test_time_is_named(tmp_path, static_scope):
    luke = write_luke_model(tmp_path / "luke")
    (tmp_path / "train.json").write_text(json.dumps(relation_records(6, seed=5)))
    odd = relation_records(2, seed=6)
    odd[1]["relation"] = "org:founded_by"
    (tmp_path / "test.json").write_text(json.dumps(odd))
    items = {"data.train": tmp_path / "train.json", "data.dev": tmp_path / "train.json",
             "data.test": tmp_path / "test.json", "model.luke": luke, "train.output_dir": tmp_path / "run"}
    cfg = load_config(RelationRunConfig, "configs/relation.yaml", [f"{k}={v}" for k, v in items.items()])
    with pytest.raises(DataError, match=r"test.json: record 1: relation 'org:founded_by' is not one of the"):
        RelationTraining(cfg)
    np.testing.assert_array_equal(len(read_relations(tmp_path / "test.json")), 2)
