"""Text classification: the file formats, the labels, the scores, and a tiny LUKE fine-tuned end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers")

from engine.config import load_config  # noqa: E402
from engine.errors import DataError  # noqa: E402
from luke_static.classify.data import (  # noqa: E402
    Columns,
    ReadReport,
    classification_scores,
    label_set,
    read_examples,
)
from luke_static.classify.job import ClassifyRunConfig, ClassifyTraining  # noqa: E402

from helpers.classify import rows, write  # noqa: E402
from helpers.luke import write_luke_model  # noqa: E402
from helpers.programs import predict_records  # noqa: E402


def test_tsv_csv_and_jsonl_read_alike_and_blank_lines_are_counted(tmp_path):
    records = rows(5, seed=0, pairs=True)
    records[0]["text"] = 'a "quoted", comma text'
    read = {}
    for suffix in (".tsv", ".csv", ".jsonl"):
        path = tmp_path / f"data{suffix}"
        write(path, records)
        path.write_text(path.read_text(encoding="utf-8") + "\n\n", encoding="utf-8")
        report = ReadReport()
        read[suffix] = [(e.text, e.text_pair, e.label)
                        for e in read_examples(path, Columns(text_pair="text_pair"), report=report)]
        assert report.blank_lines == 2
    assert read[".tsv"] == read[".csv"] == read[".jsonl"] == [(r["text"], r["text_pair"], r["label"]) for r in records]


def test_headerless_columns_are_positions(tmp_path):
    (tmp_path / "sst.tsv").write_text("a fine film\t1\nbad\t0\n")
    examples = read_examples(tmp_path / "sst.tsv", Columns(text="0", label="1", header=False))
    assert [(e.text, e.label) for e in examples] == [("a fine film", "1"), ("bad", "0")]


@pytest.mark.parametrize("content, columns, message", [
    ("text\tlabel\nfine\tpos\nthree\tfields\there\n", Columns(), r"bad.tsv:3: 3 fields where the header has 2"),
    ("text\tlabel\nfine\tpos\n \tneg\n", Columns(), r"bad.tsv:3: empty text \(column 'text'\)"),
    ("sentence\tlabel\nfine\tpos\n", Columns(), r"bad.tsv:2: no column 'text' \(the text; the row has 'sentence'"),
    ("text\tlabel\nfine\t\n", Columns(), r"bad.tsv:2: no label \(column 'label'\)"),
])
def test_a_bad_row_is_named_with_its_file_line_and_field(tmp_path, content, columns, message):
    (tmp_path / "bad.tsv").write_text(content)
    with pytest.raises(DataError, match=message):
        read_examples(tmp_path / "bad.tsv", columns)


def test_labels_are_sorted_numbers_by_value():
    examples = read_examples_of(["10", "2", "1", "2"])
    assert label_set(examples) == ["1", "2", "10"]
    assert label_set(read_examples_of(["neg", "pos", "neutral"])) == ["neg", "neutral", "pos"]


def read_examples_of(labels):
    from luke_static.classify.data import Example

    return [Example("t", None, label, "x") for label in labels]


def test_accuracy_and_macro_f1():
    gold, predicted = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])
    scores = classification_scores(predicted, gold, ["a", "b", "c"])
    assert scores["accuracy"] == pytest.approx(3 / 5)
    # a: P 1/2 R 1/2; b: P 2/3 R 1; c: P 0 R 0 (gold only): as scikit-learn's macro F1.
    assert scores["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def run_config(tmp_path, luke, train, dev, **changes):
    items = {"data.train": train, "data.dev": dev, "data.test": dev, "data.max_seq_length": 40, "model.luke": luke,
             "train.output_dir": tmp_path / "run", "train.batch_size": 8, "train.max_steps": 60,
             "train.eval_every": 30, "train.log_every": 30, "train.save_every": 0, "optim.learning_rate": 3e-3,
             "optim.warmup_ratio": 0.0, **changes}
    return load_config(ClassifyRunConfig, "configs/classify.yaml", [f"{k}={v}" for k, v in items.items()])


def test_a_dev_label_unseen_in_training_is_named(tmp_path, static_scope):
    luke = write_luke_model(tmp_path / "luke")
    train = write(tmp_path / "train.tsv", rows(8, seed=1))
    dev = rows(3, seed=2)
    dev[2]["label"] = "weather"
    cfg = run_config(tmp_path, luke, train, write(tmp_path / "dev.tsv", dev))
    with pytest.raises(DataError, match=r"dev.tsv:4: label 'weather' is not among the 3 labels of the training data"):
        ClassifyTraining(cfg)


def test_fewer_training_rows_than_a_batch_is_one_error(tmp_path, static_scope):
    from engine.errors import ConfigError

    luke = write_luke_model(tmp_path / "luke")
    train = write(tmp_path / "train.tsv", rows(6, seed=1))
    cfg = run_config(tmp_path, luke, train, train, **{"train.batch_size": 32})
    with pytest.raises(ConfigError, match=r"train.tsv: 6 training rows .features. are fewer than train.batch_size 32"):
        ClassifyTraining(cfg)


@pytest.mark.slow
def test_a_tiny_model_learns_text_pairs_and_the_export_agrees(tmp_path, static_scope):
    import paddle

    from engine.trainer import Trainer
    from luke_static import pipeline

    luke = write_luke_model(tmp_path / "luke", max_position_embeddings=80)
    train = write(tmp_path / "train.csv", rows(96, seed=3, pairs=True))
    dev_rows = rows(24, seed=4, pairs=True)
    dev = write(tmp_path / "dev.jsonl", dev_rows)
    cfg = run_config(tmp_path, luke, train, dev, **{"data.text_pair_column": "text_pair", "train.max_steps": 150,
                                                      "train.eval_every": 50, "data.best_metric": "macro_f1"})
    job = ClassifyTraining(cfg)
    metrics = Trainer(job, cfg.train, cfg.optim, cfg.runtime).fit()
    assert metrics["best_macro_f1"] > 0.85, metrics
    test = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert test["macro_f1"] == pytest.approx(metrics["best_macro_f1"])  # test = dev, with the best parameters
    export = tmp_path / "run" / "inference"
    logits = job.decode(paddle.static.Executor(paddle.CPUPlace()), job.splits["dev"])["logits"]
    expected = [job.labels[i] for i in logits.argmax(-1)]
    records = predict_records(export, dev, tmp_path, "--backend", "paddle")
    assert [r["label"] for r in records] == expected  # the export reads the file as the run did
    assert records[0]["text_pair"] == dev_rows[0]["text_pair"]
    classify = pipeline("text-classification", export)
    found = classify([(r["text"], r["text_pair"]) for r in dev_rows[:4]])
    assert [f["label"] for f in found] == expected[:4] and 0.5 < found[0]["score"] <= 1.0
    assert classify({"text": dev_rows[1]["text"], "text_pair": dev_rows[1]["text_pair"]}) == found[1]


@pytest.mark.slow
def test_a_run_exports_int8_measured_on_its_dev_set(tmp_path, static_scope, capsys):
    from engine.trainer import Trainer
    from luke_static import pipeline

    luke = write_luke_model(tmp_path / "luke", max_position_embeddings=80)
    train, dev = write(tmp_path / "train.tsv", rows(48, seed=5)), write(tmp_path / "dev.tsv", rows(16, seed=6))
    cfg = run_config(tmp_path, luke, train, dev, **{"train.export_precision": "int8"})
    Trainer(ClassifyTraining(cfg), cfg.train, cfg.optim, cfg.runtime).fit()
    export = tmp_path / "run" / "inference"
    check = json.loads((export / "classify.precision.json").read_text())["check"]
    assert check["agreement"] >= 0.99 and {"dev_accuracy_change", "dev_macro_f1_change"} <= check.keys()
    assert check["outputs"]["logits"]["rows"] == 16
    log = capsys.readouterr().out
    assert f"exported int8 program: {export}/classify.int8.onnx" in log and "int8 check: against fp32" in log
    assert pipeline("text_classification", export).program.describe() == "int8, onnxruntime, cpu"
