"""Open Entity end to end on a tiny random LUKE; the metric and the bracket normalisation."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers")

from engine.config import load_config  # noqa: E402
from engine.errors import DataError  # noqa: E402
from engine.trainer import Trainer  # noqa: E402
from luke_static.open_entity.data import normalize_brackets, read_records  # noqa: E402
from luke_static.open_entity.job import (
    OpenEntityRunConfig,  # noqa: E402
    OpenEntityTraining,  # noqa: E402
    micro_prf,  # noqa: E402
)

from helpers.luke import MENTIONS, TYPED_FRAMES, typed_records, write_luke_model, write_tokenizer  # noqa: E402
from helpers.programs import assert_backends_agree, predict_records  # noqa: E402


def test_brackets_are_normalised_with_the_offsets():
    text = "We heard -LRB- ok -RRB- that Beyoncé sang"
    start = text.index("Beyoncé")
    new, a, b = normalize_brackets(text, start, start + len("Beyoncé"))
    assert new == "We heard ( ok ) that Beyoncé sang" and new[a:b] == "Beyoncé"


def test_micro_metric():
    logits = np.array([[1.0, -1.0, 2.0], [-1.0, -1.0, -1.0]])
    gold = np.array([[1, 1, 0], [0, 0, 1]], np.float32)
    m = micro_prf(logits, gold)
    assert m["precision"] == 0.5 and m["recall"] == pytest.approx(1 / 3) and m["f1"] == pytest.approx(0.4)
    assert micro_prf(-np.ones((1, 3)), gold[:1])["precision"] == 0.0


def test_a_record_without_labels_is_named(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps([{"sent": "a b", "start": 0, "end": 1}]))
    with pytest.raises(DataError, match="record 0 has no labels"):
        read_records(tmp_path / "bad.json")


def test_a_record_longer_than_the_model_keeps_its_mention_and_the_context_that_fits(tmp_path):
    from luke_static.open_entity.data import EntityRecord, encode_records
    from luke_static.tokenizer import LukeTokenizer

    tokenizer = LukeTokenizer.from_dir(write_tokenizer(tmp_path), add_prefix_space=True, task="entity_classification")
    left, right = " ".join(["she could hardly believe"] * 30), " ".join(["her luck at Wimbledon"] * 5)
    text = f"{left} Ana Ivanovic {right}"
    record = EntityRecord(text, len(left) + 1, len(left) + 13, ["person"])
    short = EntityRecord("Top seed Ana Ivanovic said.", 9, 21, ["person"])
    arrays, cut = encode_records([record, short], tokenizer, ["person"], max_seq_length=48)
    assert cut == 1 and arrays["attention_mask"][0].sum() > 40  # cut, and nearly full
    ids = arrays["input_ids"][0][arrays["attention_mask"][0] == 1].tolist()
    positions = arrays["entity_position_ids"][0, 0]
    marked = [ids[p] for p in positions if p >= 0]
    assert len(marked) >= 3  # the mention and its two markers are inside
    whole, _ = encode_records([short], tokenizer, ["person"], max_seq_length=48)
    np.testing.assert_array_equal(whole["input_ids"][0], arrays["input_ids"][1])  # a short record is untouched
    # Both sides keep context: the longer left side gives up the most.
    start = int(positions[0])
    assert 10 < start and len(ids) - start > 10, (start, len(ids))
    with pytest.raises(DataError, match="record 0: its mention alone is"):
        encode_records([record], tokenizer, ["person"], max_seq_length=4)


@pytest.mark.slow
def test_a_tiny_model_learns_the_types_and_the_export_agrees(tmp_path, static_scope):
    from luke_static import pipeline

    luke = write_luke_model(tmp_path / "luke")
    # Held out: one sentence per mention, each in a frame that mention has no training sentence in.
    train, data = tmp_path / "train.json", tmp_path / "records.json"
    every = typed_records()
    held_out = [every[(i % len(TYPED_FRAMES)) * len(MENTIONS) + i] for i in range(len(MENTIONS))]
    train.write_text(json.dumps([r for r in every if r not in held_out], ensure_ascii=False))
    data.write_text(json.dumps(held_out, ensure_ascii=False))
    items = {"data.train": train, "data.dev": data, "data.test": data, "data.max_seq_length": 48,
             "model.luke": luke, "train.output_dir": tmp_path / "run", "train.batch_size": 6, "train.max_steps": 320,
             "train.eval_every": 80, "train.log_every": 80, "train.save_every": 0, "optim.learning_rate": 3e-3,
             "optim.accumulate_steps": 1, "optim.warmup_ratio": 0.0, "train.export_onnx": True}
    cfg = load_config(OpenEntityRunConfig, "configs/open_entity.yaml", [f"{k}={v}" for k, v in items.items()])
    job = OpenEntityTraining(cfg)
    metrics = Trainer(job, cfg.train, cfg.optim, cfg.runtime).fit()
    assert metrics["best_f1"] > 0.9, metrics
    test = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert test["f1"] == pytest.approx(metrics["best_f1"])  # test = dev here, scored with the best parameters
    export = tmp_path / "run" / "inference"
    records = predict_records(export, data, tmp_path, "--backend", "paddle")
    predicted = [{t["label"] for t in r["types"]} for r in records]
    # The exported program predicts what the test-mode program scored.
    labels = job.labels
    as_matrix = lambda sets: np.array([[float(label in s) for label in labels] for s in sets])  # noqa: E731
    exported = micro_prf(as_matrix(predicted) * 2 - 1, as_matrix([r["labels"] for r in held_out]))
    assert exported["f1"] == pytest.approx(test["f1"])
    assert [r["mention"] for r in records] == [r["sent"][r["start"]:r["end"]] for r in held_out]
    assert_backends_agree(export / job.inference_prefix, job.splits["dev"])
    assert [{t["label"] for t in r["types"]} for r in predict_records(export, data, tmp_path, "--backend",
                                                                      "onnxruntime")] == predicted
    # From Python: one mention at a time, or records; the same types, most probable first.
    typing = pipeline("entity_typing", export)
    first = held_out[0]
    types = typing(first["sent"], span=(first["start"], first["end"]))
    assert {t["label"] for t in types} == predicted[0] and types == sorted(types, key=lambda t: -t["score"])
    assert [{t["label"] for t in found} for found in typing(held_out)] == predicted
