"""Fine-tuned LUKE checkpoints keep their heads: HF task models → convert → export → paddle.inference."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from engine.errors import CheckpointError  # noqa: E402
from engine.inference import InferenceProgram  # noqa: E402
from luke_static.formats import convert, load_task  # noqa: E402

from test_luke_model import SIZES, inputs  # noqa: E402

LABELS = ["NIL", "PER", "ORG", "LOC", "MISC"]
CLASSES = {  # HF class → (the task recorded, the program's file, its outputs)
    "LukeForQuestionAnswering": ("question_answering", "squad", ("start_logits", "end_logits")),
    "LukeForEntityClassification": ("entity_classification", "open_entity", ("logits",)),
    "LukeForEntityPairClassification": ("entity_pair_classification", "relation", ("logits",)),
    "LukeForEntitySpanClassification": ("entity_span_classification", "ner", ("logits",)),
    "LukeForMaskedLM": ("masked_lm", "masked_lm", ("logits", "entity_logits")),
}


def hf_task_model(tmp_path, cls: str, **overrides):
    """A random HF task model with non-trivial biases and norms, saved with its config's label map."""
    torch.manual_seed(0)
    labelled = {"id2label": dict(enumerate(LABELS)), "label2id": {label: i for i, label in enumerate(LABELS)}}
    config = transformers.LukeConfig(**{**SIZES, **overrides}, **(labelled if "Entity" in cls else {}))
    model = getattr(transformers, cls)(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(tmp_path / "hf")
    return model, tmp_path / "hf"


def task_inputs(cls: str) -> dict[str, np.ndarray]:
    if cls == "LukeForQuestionAnswering":
        return inputs(with_entities=False)
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
    from luke_static.export import main as export_main

    export_main(["--model", str(model_dir), "--output", str(out_dir)])


@pytest.mark.parametrize("cls", sorted(CLASSES))
def test_a_fine_tuned_checkpoint_predicts_as_hf_through_paddle_inference(tmp_path, static_scope, cls):
    task, program, outputs = CLASSES[cls]
    model, src = hf_task_model(tmp_path, cls)
    convert("hf", src, tmp_path / "model")
    head = load_task(tmp_path / "model")
    assert head.task == task and head.labels == (LABELS if "Entity" in cls else [])
    export(tmp_path / "model", tmp_path / "export")
    batch = task_inputs(cls)
    got = InferenceProgram(tmp_path / "export" / program).run(batch)
    want = hf_outputs(model, batch, outputs)
    assert set(outputs) <= set(got)
    for name in outputs:
        np.testing.assert_allclose(got[name], want[name], atol=1e-5, rtol=1e-5, err_msg=name)


def test_untied_decoders_stay_weights_of_their_own(tmp_path, static_scope):
    model, src = hf_task_model(tmp_path, "LukeForMaskedLM", tie_word_embeddings=False)
    with torch.no_grad():
        for decoder in (model.lm_head.decoder, model.entity_predictions.decoder):
            decoder.weight.add_(torch.randn_like(decoder.weight) * 0.1)
    model.save_pretrained(src)
    convert("hf", src, tmp_path / "model")
    assert load_task(tmp_path / "model").untied == ("entity_predictions.decoder.weight", "lm_head.decoder.weight")
    export(tmp_path / "model", tmp_path / "export")
    batch = task_inputs("LukeForMaskedLM")
    got = InferenceProgram(tmp_path / "export" / "masked_lm").run(batch)
    want = hf_outputs(model, batch, ("logits", "entity_logits"))
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-5, rtol=1e-5, err_msg=name)


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
    export(tmp_path / "model", tmp_path / "export")
    batch = task_inputs("LukeForMaskedLM")
    got = InferenceProgram(tmp_path / "export" / "masked_lm").run(batch)
    want = hf_outputs(model, batch, ("logits", "entity_logits"))
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-5, rtol=1e-5, err_msg=name)


def test_labels_that_disagree_with_the_head_are_named(tmp_path):
    _, src = hf_task_model(tmp_path, "LukeForEntityClassification")
    config = json.loads((src / "config.json").read_text())
    config["id2label"] = {str(i): label for i, label in enumerate(LABELS[:4])}
    config.pop("label2id", None)
    (src / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="the classifier has 5 outputs but the config's id2label lists 4"):
        convert("hf", src, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_a_bare_encoder_has_no_task(tmp_path):
    from luke_fixtures import write_luke_model

    assert load_task(write_luke_model(tmp_path)) is None
