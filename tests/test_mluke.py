"""mLUKE end to end on tiny random models: conversion (pretrained, lite, with a head), the encoder against
HF's on Chinese, Japanese and German text through paddle.inference, and Chinese text classification."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("sentencepiece")

from engine.inference import InferenceProgram  # noqa: E402
from luke_static.formats import load_task  # noqa: E402
from luke_static.tokenizer import MLukeTokenizer, load_tokenizer  # noqa: E402

from helpers.luke import MLUKE_ENTITIES, save_hf_mluke  # noqa: E402

TEXTS = [("东京是日本的首都，也是世界上最大的城市之一。", [(0, 2)], ["zh:东京"]),
         ("東京は日本の首都です。", [(0, 2)], ["ja:東京"]),
         ("Angela Merkel war Bundeskanzlerin.", [(0, 13)], ["de:Angela Merkel"])]


def convert(src, output, capsys) -> str:
    from luke_static.cli import convert as convert_main

    convert_main(["--from", "hf", str(src), "--output", str(output)])
    return capsys.readouterr().out


def test_mluke_converts_and_its_encoder_equals_hf_on_three_languages(tmp_path, static_scope, capsys):
    from luke_static.cli import export

    model, src = save_hf_mluke(tmp_path)
    said = convert(src, tmp_path / "model", capsys)
    assert "2-layer mLUKE (XLM-R's SentencePiece words)" in said and f"{len(MLUKE_ENTITIES)} entities" in said
    assert isinstance(load_tokenizer(tmp_path / "model"), MLukeTokenizer)
    export(["--model", str(tmp_path / "model"), "--output", str(tmp_path / "serving" / "mluke")])
    tokenizer = load_tokenizer(tmp_path / "serving")  # the tokenizer travels with the program
    batch = tokenizer.pad([tokenizer.encode(text, entity_spans=spans, entities=titles)
                           for text, spans, titles in TEXTS])
    assert (batch["entity_ids"][:, 0] == [MLUKE_ENTITIES[t] for _, _, (t,) in TEXTS]).all()
    got = InferenceProgram(tmp_path / "serving" / "mluke").run(batch)
    with torch.no_grad():
        want = model(**{k: torch.from_numpy(v) for k, v in batch.items()})
    for name in ("word_last_hidden_state", "entity_last_hidden_state", "pooler_output"):
        hf = getattr(want, name.replace("word_", "")).numpy()
        np.testing.assert_allclose(got[name], hf, atol=1e-5, err_msg=name)


def test_a_lite_model_and_a_fine_tuned_one_say_what_they_are(tmp_path, capsys):
    _, src = save_hf_mluke(tmp_path / "lite", "LukeForMaskedLM", entity_vocab_size=4)
    (src / "entity_vocab.json").write_text(json.dumps({"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "[MASK2]": 3}))
    said = convert(src, tmp_path / "lite_model", capsys)
    assert "mLUKE" in said and "no entity table (a lite model)" in said and "masked_lm head" in said
    labels = {"id2label": {0: "负面", 1: "正面"}, "label2id": {"负面": 0, "正面": 1}}
    _, src = save_hf_mluke(tmp_path / "tuned", "LukeForSequenceClassification", **labels)
    said = convert(src, tmp_path / "tuned_model", capsys)
    assert "with its sequence_classification head with 2 labels" in said
    assert load_task(tmp_path / "tuned_model").labels == ["负面", "正面"]


# Chinese reviews by topic: each label's sentences share characters, so a tiny model separates them.
REVIEWS = {"正面": ["这家餐厅的菜很好吃", "服务很好，我很喜欢", "东京的酒店很干净，很好"],
           "负面": ["菜太咸了，不好吃", "服务太慢，我不喜欢", "房间太小，不干净"]}


def review_rows(n: int, seed: int) -> list[dict]:
    import random

    rng = random.Random(seed)
    label_of = [(text, label) for label, texts in REVIEWS.items() for text in texts]
    return [{"text": text, "label": label} for text, label in (rng.choice(label_of) for _ in range(n))]


@pytest.mark.slow
def test_chinese_text_classification_with_mluke(tmp_path, static_scope):
    from engine.config import load_config
    from engine.trainer import Trainer
    from luke_static import pipeline
    from luke_static.classify.job import ClassifyRunConfig, ClassifyTraining

    from helpers.programs import predict_records

    _, src = save_hf_mluke(tmp_path)
    from luke_static.formats import convert as convert_checkpoint

    convert_checkpoint("hf", src, tmp_path / "mluke")
    for split, (n, seed) in {"train": (64, 1), "dev": (16, 2)}.items():
        (tmp_path / f"{split}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in review_rows(n, seed)), encoding="utf-8")
    items = {"data.train": tmp_path / "train.jsonl", "data.dev": tmp_path / "dev.jsonl", "data.max_seq_length": 32,
             "model.luke": tmp_path / "mluke", "train.output_dir": tmp_path / "run", "train.batch_size": 8,
             "train.max_steps": 60, "train.eval_every": 30, "train.log_every": 30, "train.save_every": 0,
             "optim.learning_rate": 3e-3, "optim.warmup_ratio": 0.0}
    cfg = load_config(ClassifyRunConfig, "configs/classify.yaml", [f"{k}={v}" for k, v in items.items()])
    metrics = Trainer(ClassifyTraining(cfg), cfg.train, cfg.optim, cfg.runtime).fit()
    assert metrics["best_accuracy"] == 1.0, metrics
    export = tmp_path / "run" / "inference"
    assert (export / "sentencepiece.bpe.model").is_file() and load_task(export).labels == ["正面", "负面"]
    classify = pipeline("text-classification", export)
    assert [r["label"] for r in classify(["服务很好，我很喜欢", "房间太小，不干净"])] == ["正面", "负面"]
    (tmp_path / "texts.txt").write_text("这家餐厅的菜很好吃\n\n菜太咸了，不好吃\n", encoding="utf-8")
    records = predict_records(export, tmp_path / "texts.txt", tmp_path)
    assert [(r["text"], r["label"]) for r in records] == [("这家餐厅的菜很好吃", "正面"), ("菜太咸了，不好吃", "负面")]
