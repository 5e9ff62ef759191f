"""LUKE static encoder against HF transformers on tiny random weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import paddle
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from luke_static.formats import (  # noqa: E402
    convert,  # noqa: E402
    export_encoder,
    has_pooler,
    load_luke_config,  # noqa: E402
    load_luke_variables,
)
from luke_static.model import luke_encoder, luke_feeds  # noqa: E402

from helpers.luke import SIZES, inputs  # noqa: E402


def hf_model(tmp_path: Path, safetensors=True, **overrides):
    torch.manual_seed(0)
    config = transformers.LukeConfig(**{**SIZES, **overrides})
    model = transformers.LukeModel(config).eval()
    with torch.no_grad():  # non-trivial LayerNorms and biases, so a transposition error cannot hide
        for name, p in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    out = tmp_path / ("hf" if safetensors else "hf_bin")
    model.save_pretrained(out, safe_serialization=safetensors)
    return model, out


def hf_outputs(model, batch):
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in batch.items()})
    entity = out.entity_last_hidden_state
    return out.last_hidden_state.numpy(), None if entity is None else entity.numpy(), out.pooler_output.numpy()


def our_outputs(model_dir, batch):
    cfg = load_luke_config(model_dir)
    main = paddle.static.Program()
    with paddle.static.program_guard(main, paddle.static.Program()):
        feeds = luke_feeds(with_entities="entity_ids" in batch)
        out = luke_encoder(cfg, feeds, with_pooler=has_pooler(model_dir))
    load_luke_variables(model_dir, cfg, paddle.CPUPlace())
    fetch = [v for v in (out.word, out.entity, out.pooled) if v is not None]
    got = paddle.static.Executor(paddle.CPUPlace()).run(main, feed=batch, fetch_list=fetch)
    return got if out.entity is not None else [got[0], None, got[1]]


@pytest.mark.parametrize("case", ["entities", "word-only", "plain-attention", "emb=hidden", "bin"])
def test_static_encoder_equals_hf(tmp_path, static_scope, case):
    overrides = {"plain-attention": {"use_entity_aware_attention": False},
                 "emb=hidden": {"entity_emb_size": 32}}.get(case, {})
    model, src = hf_model(tmp_path, safetensors=case != "bin", **overrides)
    convert("hf", src, tmp_path / "ours")
    batch = inputs(with_entities=case != "word-only")
    want, got = hf_outputs(model, batch), our_outputs(tmp_path / "ours", batch)
    for w, g in zip(want, got):
        if w is None:
            assert g is None
        else:
            np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-5)


def test_exported_program_through_paddle_inference(tmp_path, static_scope):
    model, src = hf_model(tmp_path)
    convert("hf", src, tmp_path / "ours")
    prefix = export_encoder(paddle.static.Executor(paddle.CPUPlace()), paddle.CPUPlace(), tmp_path / "ours",
                            tmp_path / "export" / "luke")
    config = paddle.inference.Config(prefix + ".json", prefix + ".pdiparams")
    config.disable_glog_info()
    predictor = paddle.inference.create_predictor(config)
    assert predictor.get_output_names() == ["word_last_hidden_state", "entity_last_hidden_state", "pooler_output"]
    batch = inputs()
    for name in predictor.get_input_names():
        handle = predictor.get_input_handle(name)
        handle.reshape(batch[name].shape)
        handle.copy_from_cpu(batch[name])
    predictor.run()
    for name, want in zip(predictor.get_output_names(), hf_outputs(model, batch)):
        np.testing.assert_allclose(predictor.get_output_handle(name).copy_to_cpu(), want, atol=1e-5, rtol=1e-5)


# What PaddleNLP 2.8.1's `LukeConfig.save_pretrained` writes besides the sizes (read from its output).
PADDLENLP_KEYS = {"cls_token_id": 101, "entity_pad_token_id": 0, "hidden_act": "gelu", "initializer_range": 0.02,
                  "model_type": "luke", "pad_token_id": 1, "paddlenlp_version": None, "architectures": ["LukeModel"],
                  "dtype": "float32", "tensor_parallel_degree": 1, "use_flash_attention": False}


def test_paddlenlp_format_converts_to_the_same_model(tmp_path, static_scope):
    # PaddleNLP's LUKE uses LayerNorm eps 1e-6 whatever its config says: so must the conversion.
    model, src = hf_model(tmp_path, layer_norm_eps=1e-6)
    # PaddleNLP's names and layout: "luke." prefix kept, LayerNorm → layer_norm, dense weights [in, out].
    state = {}
    for name, value in model.state_dict().items():
        array = value.numpy()
        if name.endswith(".weight") and array.ndim == 2 and not name.endswith("embeddings.weight"):
            array = array.T
        state["luke." + name.replace("LayerNorm", "layer_norm")] = array
    pn = tmp_path / "pn"
    pn.mkdir()
    paddle.save(state, str(pn / "model_state.pdparams"))
    (pn / "config.json").write_text(json.dumps({**SIZES, **PADDLENLP_KEYS}))
    cfg, _ = convert("paddlenlp", pn, tmp_path / "from_pn")
    assert cfg.layer_norm_eps == 1e-6
    convert("hf", src, tmp_path / "from_hf")
    batch = inputs()
    for a, b in zip(our_outputs(tmp_path / "from_pn", batch), our_outputs(tmp_path / "from_hf", batch)):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("change, message", [
    ({"model_type": "bert"}, "model_type 'bert' is not a LUKE config"),
    ({"hidden_act": "relu"}, "hidden_act 'relu' is not supported"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type 'relative_key' is not supported"),
])
def test_a_config_for_another_network_is_refused(tmp_path, change, message):
    from engine.errors import ConfigError
    from luke_static.config import from_pretrained_config

    assert from_pretrained_config({**SIZES, **PADDLENLP_KEYS, "some_future_key": 1}, "c.json").hidden_size == 32
    with pytest.raises(ConfigError, match=message):
        from_pretrained_config({**SIZES, **PADDLENLP_KEYS, **change}, "c.json")


def test_files_written_by_paddlenlp_itself_convert_to_its_model(tmp_path, static_scope):
    """Against the seed system when it is installed (the `bench` extra's pins; its own environment)."""
    paddlenlp = pytest.importorskip("paddlenlp.transformers", reason="PaddleNLP not installed (the bench extra)")
    pn_sizes = {k: v for k, v in SIZES.items() if k != "layer_norm_eps"}
    paddle.disable_static()
    try:
        paddle.seed(0)
        model = paddlenlp.LukeModel(paddlenlp.LukeConfig(**pn_sizes))
        model.eval()
        model.save_pretrained(str(tmp_path / "pn"))
        batch = inputs()
        with paddle.no_grad():
            word, entity = model(**{k: paddle.to_tensor(v) for k, v in batch.items()})[:2]
        want = [word.numpy(), entity.numpy()]
    finally:
        paddle.enable_static()
    convert("paddlenlp", tmp_path / "pn", tmp_path / "ours")
    # Real positions only: PaddleNLP's word table returns zeros for the pad id (`padding_idx`) whatever
    # its row holds, which only padded positions read (a random model's pad row is not zero).
    for w, g, mask in zip(want, our_outputs(tmp_path / "ours", batch)[:2],
                          (batch["attention_mask"], batch["entity_attention_mask"])):
        np.testing.assert_allclose(g[mask == 1], w[mask == 1], atol=1e-5, rtol=1e-5)


def test_pretrained_files_without_entity_queries_get_copies_of_query(tmp_path):
    from engine.variables import read_tensor
    from engine.weights_io import read_safetensors

    model, src = hf_model(tmp_path)
    state = read_safetensors(src / "model.safetensors")
    stripped = {k: v for k, v in state.items() if not any(q in k for q in ("w2e_query", "e2w_query", "e2e_query"))}
    from safetensors.numpy import save_file

    save_file(stripped, str(src / "model.safetensors"))
    convert("hf", src, tmp_path / "ours")
    query = read_tensor(tmp_path / "ours" / "encoder.layer.1.attention.self.query.weight")
    np.testing.assert_array_equal(read_tensor(tmp_path / "ours" / "encoder.layer.1.attention.self.e2e_query.weight"),
                                  query)


def test_mismatched_checkpoints_list_the_names(tmp_path):
    from engine.errors import CheckpointError

    model, src = hf_model(tmp_path)
    config = json.loads((src / "config.json").read_text())
    config["num_hidden_layers"] = 3
    (src / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"missing encoder.layer.2.attention.output.LayerNorm.bias"):
        convert("hf", src, tmp_path / "ours")
    assert not (tmp_path / "ours").exists()
