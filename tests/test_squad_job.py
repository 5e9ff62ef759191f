"""SQuAD fine-tuning end to end on a tiny random LUKE: it learns, exports, predicts."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers")

from engine.config import load_config  # noqa: E402
from engine.trainer import Trainer  # noqa: E402
from luke_static.squad.data import feature_arrays  # noqa: E402
from luke_static.squad.job import (
    SquadRunConfig,  # noqa: E402
    SquadTraining,  # noqa: E402
)

from helpers.luke import write_luke_model, write_squad  # noqa: E402
from helpers.programs import assert_backends_agree, predict_records  # noqa: E402

pytestmark = pytest.mark.slow  # every test fine-tunes LUKE through Trainer.fit


@pytest.fixture(scope="module")
def luke_dir(tmp_path_factory):
    return write_luke_model(tmp_path_factory.mktemp("luke"))


def squad_config(tmp_path, luke_dir, **extra) -> SquadRunConfig:
    data = write_squad(tmp_path / "squad.json", with_entities=extra.pop("entities", False))
    items = {"data.train": data, "data.dev": data, "data.max_seq_length": 64, "data.doc_stride": 16,
             "data.max_query_length": 16, "model.luke": luke_dir, "train.output_dir": tmp_path / "run",
             "train.batch_size": 8, "train.max_steps": 150, "train.log_every": 50, "train.save_every": 0,
             "optim.learning_rate": 3e-3, "optim.warmup_ratio": 0.0, "optim.freeze": "[]", **extra}
    return load_config(SquadRunConfig, "configs/squad.yaml", [f"{k}={v}" for k, v in items.items()])


def test_a_tiny_model_learns_the_answers_and_the_export_agrees(tmp_path, luke_dir, static_scope):
    from luke_static import pipeline
    from luke_static.cli import squad_eval

    cfg = squad_config(tmp_path, luke_dir, **{"train.export_onnx": True})
    job = SquadTraining(cfg)
    metrics = Trainer(job, cfg.train, cfg.optim, cfg.runtime).fit()
    assert metrics["exact_match"] >= 75 and metrics["f1"] >= 80, metrics
    predictions = json.loads((tmp_path / "run" / "predictions.json").read_text())
    assert set(predictions) == {f"q{i}" for i in range(1, 9)}
    nbest = json.loads((tmp_path / "run" / "nbest_predictions.json").read_text())
    assert nbest["q1"][0]["text"] == predictions["q1"] and abs(sum(c["probability"] for c in nbest["q1"]) - 1) < 1e-6

    export = tmp_path / "run" / "inference"
    records = predict_records(export, tmp_path / "squad.json", tmp_path, "--backend", "paddle")
    answers = {r["id"]: r["answer"] for r in records}
    assert answers == predictions  # the exported program answers as the test-mode program did
    for record in records:  # offsets into the context, probabilities
        context = next(q["context"] for q in questions(tmp_path / "squad.json") if q["id"] == record["id"])
        assert context[record["start"]:record["end"]] == record["answer"] and 0 < record["score"] <= 1
    # squad-eval takes the records as predictions: the run's own score.
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert squad_eval([str(tmp_path / "squad.json"), str(tmp_path / "records.jsonl")]) == pytest.approx(
        {"exact_match": metrics["exact_match"], "f1": metrics["f1"]})
    examples, features = job.splits["dev"]
    arrays = feature_arrays(features, job.settings, job.tokenizer.pad_id, job.tokenizer.entity_pad_id)
    assert_backends_agree(export / job.inference_prefix, arrays)
    onnx = predict_records(export, tmp_path / "squad.json", tmp_path, "--backend", "onnxruntime")
    assert {r["id"]: r["answer"] for r in onnx} == predictions
    # Records instead of a SQuAD file, and one question from Python.
    asked = questions(tmp_path / "squad.json")
    (tmp_path / "asked.jsonl").write_text("".join(json.dumps(q) + "\n" for q in asked))
    assert [r["answer"] for r in predict_records(export, tmp_path / "asked.jsonl", tmp_path)] == [
        predictions[q["id"]] for q in asked]
    qa = pipeline("question_answering", export)
    assert qa(question=asked[0]["question"], context=asked[0]["context"])["answer"] == predictions[asked[0]["id"]]


def questions(path) -> list[dict]:
    """A SQuAD file's questions as {"id", "question", "context"} records."""
    data = json.loads(path.read_text())["data"]
    return [{"id": qa["id"], "question": qa["question"], "context": p["context"]}
            for article in data for p in article["paragraphs"] for qa in p["qas"]]


def test_with_entity_annotations(tmp_path, luke_dir, static_scope):
    cfg = squad_config(tmp_path, luke_dir, entities=True, **{"data.max_entity_length": 4, "train.max_steps": 30})
    job = SquadTraining(cfg)
    with np.load(job.train_file) as arrays:
        assert arrays["entity_attention_mask"].sum() > 0  # annotated mentions reach the model
    trainer = Trainer(job, cfg.train, cfg.optim, cfg.runtime)
    assert np.isfinite(trainer.fit()["f1"])
    # The entities reach the outputs: with their attention masked, the model is words-only and answers otherwise.
    _, features = job.splits["dev"]
    arrays = feature_arrays(features, job.settings, job.tokenizer.pad_id, job.tokenizer.entity_pad_id)
    assert arrays["entity_attention_mask"].sum() > 0
    words_only = dict(arrays, entity_attention_mask=np.zeros_like(arrays["entity_attention_mask"]))
    with_entities, without = (job.decode(trainer.exe, a)["start_logits"] for a in (arrays, words_only))
    rows = arrays["entity_attention_mask"].any(axis=1)
    assert np.abs(with_entities[rows] - without[rows]).max() > 1e-3
    np.testing.assert_allclose(with_entities[~rows], without[~rows], atol=1e-5)  # nothing to mask: unchanged
