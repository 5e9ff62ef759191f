"""Fine-tuned LUKE checkpoints keep their heads: HF task models → convert → export → paddle.inference."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from engine.errors import CheckpointError, PipelineError  # noqa: E402
from engine.inference import InferenceProgram  # noqa: E402
from luke_static.formats import convert, load_task  # noqa: E402

from helpers.luke import (  # noqa: E402
    ENTITIES,
    SIZES,
    inputs,
    relation_records,
    save_hf_luke,
    typed_records,
    write_luke_model,
    write_squad,
)
from helpers.programs import predict_records  # noqa: E402

LABELS = ["NIL", "PER", "ORG", "LOC", "MISC"]
CLASSES = {  # HF class → (the task recorded, the program's file, its outputs)
    "LukeForQuestionAnswering": ("question_answering", "squad", ("start_logits", "end_logits")),
    "LukeForEntityClassification": ("entity_classification", "open_entity", ("logits",)),
    "LukeForEntityPairClassification": ("entity_pair_classification", "relation", ("logits",)),
    "LukeForEntitySpanClassification": ("entity_span_classification", "ner", ("logits",)),
    "LukeForSequenceClassification": ("sequence_classification", "classify", ("logits",)),
    "LukeForTokenClassification": ("token_classification", "token_classification", ("logits",)),
    "LukeForMultipleChoice": ("multiple_choice", "multiple_choice", ("logits",)),
    "LukeForMaskedLM": ("masked_lm", "masked_lm", ("logits", "entity_logits")),
}
# The classes whose config lists labels.
LABELLED = ("Entity", "Sequence", "Token")


def labelled(cls: str) -> bool:
    return any(kind in cls for kind in LABELLED)


def hf_task_model(tmp_path, cls: str, **overrides):
    """A random HF task model with non-trivial biases and norms, saved with its config's label map."""
    torch.manual_seed(0)
    label_map = {"id2label": dict(enumerate(LABELS)), "label2id": {label: i for i, label in enumerate(LABELS)}}
    config = transformers.LukeConfig(**{**SIZES, **overrides}, **(label_map if labelled(cls) else {}))
    model = getattr(transformers, cls)(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(tmp_path / "hf")
    return model, tmp_path / "hf"


def task_inputs(cls: str) -> dict[str, np.ndarray]:
    if cls in ("LukeForQuestionAnswering", "LukeForSequenceClassification", "LukeForTokenClassification"):
        return inputs(with_entities=False)
    if cls == "LukeForMultipleChoice":  # [B, C, L]: two questions of three choices each
        words = inputs(with_entities=False)
        return {name: np.stack([words[name], words[name][::-1], words[name][:, ::-1]], axis=1) for name in words}
    batch = inputs()
    if cls == "LukeForEntitySpanClassification":
        batch["entity_start_positions"] = np.array([[1, 4, 5], [1, 0, 0]], np.int64)
        batch["entity_end_positions"] = np.array([[3, 4, 6], [2, 0, 0]], np.int64)
    return batch


def hf_outputs(model, batch: dict, names) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in batch.items()})
    return {name: getattr(out, name).numpy() for name in names}


def export(model_dir, out_dir) -> None:
    from luke_static.cli import export as export_main

    export_main(["--model", str(model_dir), "--output", str(out_dir)])


def assert_export_predicts_as(model, model_dir, out_dir, cls: str) -> None:
    """Exports the converted `model_dir` and checks its program's outputs against the HF `model`'s."""
    _, program, outputs = CLASSES[cls]
    export(model_dir, out_dir)
    batch = task_inputs(cls)
    got = InferenceProgram(out_dir / program).run(batch)
    want = hf_outputs(model, batch, outputs)
    for name in outputs:
        np.testing.assert_allclose(got[name], want[name], atol=1e-5, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("cls", sorted(CLASSES))
def test_a_fine_tuned_checkpoint_predicts_as_hf_through_paddle_inference(tmp_path, static_scope, cls):
    model, src = hf_task_model(tmp_path, cls)
    convert("hf", src, tmp_path / "model")
    head = load_task(tmp_path / "model")
    assert head.task == CLASSES[cls][0] and head.labels == (LABELS if labelled(cls) else [])
    assert_export_predicts_as(model, tmp_path / "model", tmp_path / "export", cls)


@pytest.mark.parametrize("cls", ["LukeForSequenceClassification", "LukeForTokenClassification",
                                 "LukeForMultipleChoice"])
def test_the_new_heads_run_in_onnx_runtime_as_hf(tmp_path, static_scope, cls):
    pytest.importorskip("paddle2onnx")
    from luke_static.cli import export as export_main

    model, src = hf_task_model(tmp_path, cls)
    convert("hf", src, tmp_path / "model")
    export_main(["--model", str(tmp_path / "model"), "--output", str(tmp_path / "export"), "--onnx"])
    batch = task_inputs(cls)
    got = InferenceProgram(tmp_path / "export" / CLASSES[cls][1], backend="onnxruntime").run(batch)["logits"]
    np.testing.assert_allclose(got, hf_outputs(model, batch, ["logits"])["logits"], atol=1e-5, rtol=1e-5)


def test_untied_decoders_stay_weights_of_their_own(tmp_path, static_scope):
    model, src = hf_task_model(tmp_path, "LukeForMaskedLM", tie_word_embeddings=False)
    with torch.no_grad():
        for decoder in (model.lm_head.decoder, model.entity_predictions.decoder):
            decoder.weight.add_(torch.randn_like(decoder.weight) * 0.1)
    model.save_pretrained(src)
    convert("hf", src, tmp_path / "model")
    assert load_task(tmp_path / "model").untied == ("entity_predictions.decoder.weight", "lm_head.decoder.weight")
    assert_export_predicts_as(model, tmp_path / "model", tmp_path / "export", "LukeForMaskedLM")


def test_paddlenlp_head_names_convert_to_the_same_predictions(tmp_path, static_scope):
    """PaddleNLP's masked LM: `lm_head.decoder_weight`/`decoder_bias`, an untied entity Linear [in, out]
    with its own bias, `layer_norm` for LayerNorm, dense weights [in, out]."""
    import paddle

    # PaddleNLP's LayerNorm eps is 1e-6, and its word decoder is the word table itself.
    model, _ = hf_task_model(tmp_path, "LukeForMaskedLM", layer_norm_eps=1e-6)
    with torch.no_grad():
        model.lm_head.decoder.weight.copy_(model.luke.embeddings.word_embeddings.weight)
    state = {}
    for name, value in model.state_dict().items():
        array = value.numpy()
        if name in ("lm_head.decoder.bias",):
            continue
        if name == "lm_head.decoder.weight":
            state["lm_head.decoder_weight"] = array
            continue
        if name == "lm_head.bias":
            state["lm_head.decoder_bias"] = array
            continue
        if name == "entity_predictions.bias":
            state["entity_predictions.decoder.bias"] = array
            continue
        if array.ndim == 2 and not name.endswith("embeddings.weight"):
            array = array.T
        state[name.replace("LayerNorm", "layer_norm")] = array
    pn = tmp_path / "pn"
    pn.mkdir()
    paddle.save(state, str(pn / "model_state.pdparams"))
    (pn / "config.json").write_text(json.dumps({**SIZES, "layer_norm_eps": 1e-6, "architectures": ["LukeForMaskedLM"],
                                                "model_type": "luke"}))
    convert("paddlenlp", pn, tmp_path / "model")
    assert load_task(tmp_path / "model").untied == ()  # both decoders equal their tables: tied
    assert_export_predicts_as(model, tmp_path / "model", tmp_path / "export", "LukeForMaskedLM")


def test_labels_that_disagree_with_the_head_are_named(tmp_path):
    _, src = hf_task_model(tmp_path, "LukeForEntityClassification")
    config = json.loads((src / "config.json").read_text())
    config["id2label"] = {str(i): label for i, label in enumerate(LABELS[:4])}
    config.pop("label2id", None)
    (src / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="the classifier has 5 outputs but the config's id2label lists 4"):
        convert("hf", src, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def rewrite_config(src, **changes) -> None:
    config = json.loads((src / "config.json").read_text())
    config.update(changes)
    (src / "config.json").write_text(json.dumps({k: v for k, v in config.items() if v is not None}))


def test_the_class_a_config_names_is_the_head_or_one_error(tmp_path):
    _, src = hf_task_model(tmp_path, "LukeForSequenceClassification")
    rewrite_config(src, architectures=["LukeForSomethingNew"])
    with pytest.raises(CheckpointError, match="architectures name LukeForSomethingNew, which this project does not"):
        convert("hf", src, tmp_path / "model")
    # Without the class's name, a classifier one hidden state wide could be any of four heads.
    rewrite_config(src, architectures=None)
    with pytest.raises(CheckpointError, match="no architectures, and a classifier 32 wide fits LukeForEntity"):
        convert("hf", src, tmp_path / "model")
    assert not (tmp_path / "model").exists()
    rewrite_config(src, architectures=["LukeModel"])
    with pytest.raises(CheckpointError, match="names LukeModel .an encoder. but the checkpoint holds head weights"):
        convert("hf", src, tmp_path / "model")


@pytest.mark.parametrize("problem_type, labels, recorded", [
    (None, LABELS, "single_label_classification"), ("multi_label_classification", LABELS, None),
    (None, ["score"], "regression")])
def test_a_text_classifier_records_how_its_logits_are_read(tmp_path, problem_type, labels, recorded):
    _, src = hf_task_model(tmp_path, "LukeForSequenceClassification", num_labels=len(labels))
    rewrite_config(src, id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
    rewrite_config(src, problem_type=problem_type)
    convert("hf", src, tmp_path / "model")
    head = load_task(tmp_path / "model")
    assert head.labels == labels and head.problem_type == (recorded or problem_type)


def test_a_bare_encoder_has_no_task(tmp_path):
    assert load_task(write_luke_model(tmp_path)) is None


# -- what a user does next: predict with the export, fill masks ---------------------------

TYPES = ["NIL", "PER", "LOC", "ORG"]


def converted_export(tmp_path, cls: str):
    """A tiny HF `cls` with tokenizer files and labels, converted and exported; (HF model, export dir)."""
    label_map = {"id2label": dict(enumerate(TYPES)), "label2id": {t: i for i, t in enumerate(TYPES)}}
    # Positions for the predictors' default windows (512 tokens).
    model, src = save_hf_luke(tmp_path, cls, max_position_embeddings=520, **(label_map if labelled(cls) else {}))
    convert("hf", src, tmp_path / "model")
    export(tmp_path / "model", tmp_path / "export")
    return model, tmp_path / "export"


def hf_encode(export, texts, pairs=None) -> dict:
    """HF's LukeTokenizer on the export's files (a space before the first word, as the pipelines read
    text): word inputs as numpy, padded."""
    vocab = json.loads((export / "vocab.json").read_text())
    merges = [tuple(line.split()) for line in (export / "merges.txt").read_text().splitlines()[1:] if line]
    hf = transformers.LukeTokenizer(vocab=vocab, merges=merges, entity_vocab=dict(ENTITIES), add_prefix_space=True)
    batch = hf(texts, pairs, padding=True, return_tensors="np", return_token_type_ids=True)
    return {k: batch[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}


@pytest.mark.slow
def test_the_new_heads_pipelines_answer_as_hf(tmp_path, static_scope):
    """Text classification, token classification and multiple choice: a converted HF checkpoint through
    its pipeline gives what HF's model gives on HF's tokenization."""
    from luke_static import pipeline

    texts = ["Beyoncé lives in Los Angeles .", "Ana Ivanovic won at Wimbledon ."]
    model, export = converted_export(tmp_path / "seq", "LukeForSequenceClassification")
    logits = hf_outputs(model, hf_encode(export, texts), ["logits"])["logits"]
    labels = load_task(export).labels
    found = pipeline("text-classification", export)(texts)
    assert [f["label"] for f in found] == [labels[i] for i in logits.argmax(-1)]
    probability = np.exp(logits[0]) / np.exp(logits[0]).sum()
    assert found[0]["score"] == pytest.approx(probability.max(), abs=1e-5)

    model, export = converted_export(tmp_path / "tok", "LukeForTokenClassification")
    # Words are tokenized with a space in front, the first one too (the CoNLL recipe's).
    logits = hf_outputs(model, hf_encode(export, texts[:1]), ["logits"])["logits"][0]
    labels = load_task(export).labels
    words = texts[0].split()
    firsts, position = [], 1
    for word in words:
        firsts.append(position)
        position += len(hf_encode(export, [word])["input_ids"][0]) - 2
    tags = [labels[j] for j in logits[firsts].argmax(-1)]
    found = pipeline("token_classification", export)(texts[0])
    assert [item["label"] for item in found] == tags and [item["text"] for item in found] == words

    model, export = converted_export(tmp_path / "mc", "LukeForMultipleChoice")
    prompt, choices = "Beyoncé lives in", ["Los Angeles .", "Wimbledon .", "a city ."]
    batch = {k: v[None] for k, v in hf_encode(export, [prompt] * 3, choices).items()}  # [1, 3, L]
    logits = hf_outputs(model, batch, ["logits"])["logits"][0]
    found = pipeline("multiple_choice", export)(prompt, choices=choices)
    assert found["choice"] == int(logits.argmax()) and found["text"] == choices[found["choice"]]
    np.testing.assert_allclose(found["scores"], np.exp(logits) / np.exp(logits).sum(), atol=1e-5)


@pytest.mark.slow
def test_the_pipelines_take_a_converted_checkpoints_export(tmp_path, static_scope):
    from luke_static import pipeline
    from luke_static.open_entity.data import encode_records, read_records
    from luke_static.tokenizer import LukeTokenizer

    squad = write_squad(tmp_path / "squad.json")
    _, qa = converted_export(tmp_path / "qa", "LukeForQuestionAnswering")
    answers = predict_records(qa, squad, tmp_path)
    contexts = json.loads(squad.read_text())["data"][0]["paragraphs"]
    assert len(answers) == 8 and all(any(a["answer"] in p["context"] for p in contexts) for a in answers)

    model, typing = converted_export(tmp_path / "typing", "LukeForEntityClassification")
    (tmp_path / "oe.json").write_text(json.dumps(typed_records()[:6], ensure_ascii=False))
    predicted = [[t["label"] for t in r["types"]] for r in predict_records(typing, tmp_path / "oe.json", tmp_path)]
    tokenizer = LukeTokenizer.from_dir(typing, add_prefix_space=True, task="entity_classification")
    arrays, _ = encode_records(read_records(tmp_path / "oe.json"), tokenizer, TYPES, 256)
    logits = hf_outputs(model, {k: v for k, v in arrays.items() if k != "labels"}, ["logits"])["logits"]
    assert [set(p) for p in predicted] == [{t for t, x in zip(TYPES, row) if x > 0} for row in logits]  # HF's

    _, pair = converted_export(tmp_path / "pair", "LukeForEntityPairClassification")
    (tmp_path / "rel.json").write_text(json.dumps(relation_records(5, seed=1)))
    assert {r["label"] for r in predict_records(pair, tmp_path / "rel.json", tmp_path)} <= set(TYPES)

    _, spans = converted_export(tmp_path / "spans", "LukeForEntitySpanClassification")
    (tmp_path / "text.txt").write_text("Ana Ivanovic lives in Los Angeles .\n")
    (record,) = predict_records(spans, tmp_path / "text.txt", tmp_path)
    assert len(record["tags"]) == 7 and {t.split("-")[-1] for t in record["tags"]} <= {"O", "PER", "LOC", "ORG"}
    # The converted model directory itself serves too (exported on the fly), with the same entities.
    assert pipeline("ner", tmp_path / "spans" / "model")("Ana Ivanovic lives in Los Angeles .") == record["entities"]


def test_an_export_of_another_task_is_named_in_one_line(tmp_path, static_scope):
    from engine.errors import ConfigError
    from luke_static import pipeline

    _, pair = converted_export(tmp_path / "pair", "LukeForEntityPairClassification")
    with pytest.raises(ConfigError, match=r"is a relation export, not ner: use pipeline\('relation', …\)"):
        pipeline("ner", pair)
    with pytest.raises(ConfigError, match="is a relation export, not question_answering"):
        predict_records(pair, tmp_path / "any.txt", tmp_path, "--task", "question_answering")


def test_fill_mask_ranks_words_and_entities_as_hf(tmp_path, static_scope, capsys):
    from luke_static.cli import fill_mask
    from luke_static.tokenizer import LukeTokenizer

    model, src = save_hf_luke(tmp_path, "LukeForMaskedLM")
    convert("hf", src, tmp_path / "model")
    text = "Beyoncé lives in <mask>."
    filled = fill_mask(["--model", str(tmp_path / "model"), "--text", text, "--entity-spans", "0:7", "--top-k", "3"])
    assert json.loads(capsys.readouterr().out) == {"text": text, **filled}  # one JSON record
    tokenizer = LukeTokenizer.from_dir(tmp_path / "model", add_prefix_space=True)
    batch = tokenizer.pad([tokenizer.encode(text, entity_spans=[(0, 7)])])
    want = hf_outputs(model, batch, ("logits", "entity_logits"))
    mask_at = list(batch["input_ids"][0]).index(tokenizer.mask_id)
    top_words = np.argsort(-want["logits"][0, mask_at])[:3]
    assert [w["text"] for w in filled["words"][0]] == [tokenizer.decode([int(t)]).strip() for t in top_words]
    titles = {i: t for t, i in ENTITIES.items()}
    top_entities = np.argsort(-want["entity_logits"][0, 0])[:3]
    assert [e["text"] for e in filled["entities"][0]] == [titles[int(i)] for i in top_entities]
    assert sum(w["score"] for w in filled["words"][0]) <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("same_labels", [True, False])
def test_fine_tuning_starts_from_the_checkpoints_head_when_the_labels_match(tmp_path, static_scope, capsys,
                                                                            same_labels):
    from engine.config import load_config
    from engine.trainer import Trainer
    from engine.variables import get_value
    from luke_static.open_entity.job import OpenEntityRunConfig, OpenEntityTraining

    data = tmp_path / "oe.json"
    data.write_text(json.dumps(typed_records(), ensure_ascii=False))
    labels = sorted({label for r in typed_records() for label in r["labels"]})
    theirs = labels[::-1] if same_labels else labels[:-1] + ["other"]  # the same labels in another order, or not
    model, src = save_hf_luke(tmp_path, "LukeForEntityClassification", id2label=dict(enumerate(theirs)),
                              label2id={t: i for i, t in enumerate(theirs)})
    convert("hf", src, tmp_path / "model")
    items = {"data.train": data, "data.dev": data, "data.test": data, "model.luke": tmp_path / "model",
             "train.output_dir": tmp_path / "run",
             "train.max_steps": 1, "train.save_every": 0, "optim.learning_rate": 0.0, "optim.accumulate_steps": 1}
    cfg = load_config(OpenEntityRunConfig, "configs/open_entity.yaml", [f"{k}={v}" for k, v in items.items()])
    Trainer(OpenEntityTraining(cfg), cfg.train, cfg.optim, cfg.runtime).fit()
    out = capsys.readouterr().out
    weight = model.classifier.weight.detach().numpy().T  # [in, out] in the checkpoint's label order
    if same_labels:
        assert f"entity_classification head from {tmp_path / 'model'} ({len(labels)} labels)" in out
        np.testing.assert_allclose(get_value("classifier.weight"), weight[:, [theirs.index(x) for x in labels]],
                                   atol=1e-6)
    else:
        assert f"holds a entity_classification head for {len(theirs)} other labels" in out
        assert get_value("classifier.weight").shape == (weight.shape[0], len(labels))


@pytest.mark.parametrize("cls", sorted(CLASSES))
def test_heads_written_by_paddlenlp_itself_convert_to_its_predictions(tmp_path, static_scope, cls):
    """Against the seed system when it is installed (the `bench` extra's pins; its own environment)."""
    paddlenlp = pytest.importorskip("paddlenlp.transformers", reason="PaddleNLP not installed (the bench extra)")
    import paddle

    task, program, outputs = CLASSES[cls]
    sizes = {k: v for k, v in SIZES.items() if k != "layer_norm_eps"}
    batch = task_inputs(cls)
    paddle.disable_static()
    try:
        paddle.seed(0)
        config = paddlenlp.LukeConfig(**sizes, **({"num_labels": len(LABELS)} if "Entity" in cls else {}))
        model = getattr(paddlenlp, cls)(config)
        model.eval()
        model.save_pretrained(str(tmp_path / "pn"))
        with paddle.no_grad():
            got = model(**{k: paddle.to_tensor(v) for k, v in batch.items()})
        want = dict(zip(outputs, (t.numpy() for t in (got if isinstance(got, (tuple, list)) else [got]))))
    finally:
        paddle.enable_static()
    convert("paddlenlp", tmp_path / "pn", tmp_path / "model")
    assert load_task(tmp_path / "model").task == task
    export(tmp_path / "model", tmp_path / "export")
    ours = InferenceProgram(tmp_path / "export" / program).run(batch)
    # Real positions only: PaddleNLP's tables return zeros for padding ids (`padding_idx`), HF's and ours
    # read the row; rows 0 of the pair head read two real entities.
    real = {"start_logits": batch["attention_mask"] == 1, "end_logits": batch["attention_mask"] == 1}
    if cls == "LukeForMaskedLM":
        real = {"logits": batch["attention_mask"] == 1, "entity_logits": batch["entity_attention_mask"] == 1}
    elif cls == "LukeForEntitySpanClassification":
        real = {"logits": batch["entity_attention_mask"] == 1}
    elif "Entity" in cls:
        real = {"logits": np.array([True, cls == "LukeForEntityClassification"])}
    for name in outputs:
        np.testing.assert_allclose(ours[name][real[name]], want[name][real[name]], atol=1e-5, rtol=1e-5,
                                   err_msg=name)


@pytest.mark.parametrize("task, text, message", [
    ("question_answering", '{"id": "a", "question": "x?"}\n', r"bad.jsonl: record 0 needs 'question' and 'context'"),
    ("relation", '[{"text": "Ana lives here", "subject": [0, 3], "object": [2, 9]}]',
     r"bad.jsonl: record 0: the subject characters \(0, 3\) and the object \(2, 9\) overlap"),
    ("entity_typing", '{"sent": "Ana", "start": 0}\n', "bad.jsonl: record 0 has no end"),
])
def test_a_bad_input_record_is_named_with_its_file(tmp_path, static_scope, task, text, message):
    from luke_static import pipeline

    cls = {"question_answering": "LukeForQuestionAnswering", "relation": "LukeForEntityPairClassification",
           "entity_typing": "LukeForEntityClassification"}[task]
    _, export = converted_export(tmp_path, cls)
    (tmp_path / "bad.jsonl").write_text(text)
    with pytest.raises(PipelineError, match=message):
        list(pipeline(task, export).records(tmp_path / "bad.jsonl"))
