"""End-to-end pretraining on a toy corpus: learning, checkpoints, resume, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import paddle
import pytest

from bilm.embedder import INFERENCE_PREFIX
from bilm.formats import read_model_dir
from bilm.model import variable_shapes
from engine.errors import PipelineError
from engine.variables import read_tensor

from helpers.bilm import numpy_lstmp, tiny_config, train

pytestmark = pytest.mark.slow  # every test trains a biLM through Trainer.fit


def checkpoint_arrays(path: Path) -> dict[str, np.ndarray]:
    """The tensor files of a checkpoint (everything but its state and job files)."""
    other = {"trainer_state.json", "carry.npz", "manifest.json", "model.json", "vocab.txt"}
    return {p.name: read_tensor(p) for p in path.iterdir() if p.name not in other}


def test_tiny_model_learns_far_below_unigram(toy_corpus, tmp_path, static_scope):
    cfg = tiny_config(toy_corpus, tmp_path / "run", **{"train.max_steps": 150, "train.eval_every": 0})
    metrics = train(cfg)
    assert metrics["unigram_ppl"] > 10
    assert metrics["ppl"] < 0.4 * metrics["unigram_ppl"], metrics
    assert metrics["ppl_fw"] < 0.5 * metrics["unigram_ppl"] and metrics["ppl_bw"] < 0.5 * metrics["unigram_ppl"]
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert log[0]["loss"] > log[-2]["loss"]  # the last record is the evaluation


def test_outputs_keep_the_fluid_variable_names(toy_corpus, tmp_path, static_scope):
    cfg = tiny_config(toy_corpus, tmp_path / "run")
    train(cfg)
    run = tmp_path / "run"
    model = run / "model"
    model_cfg, vocab = read_model_dir(model)
    expected = variable_shapes(model_cfg)
    assert {"embedding_para", "fw_layer1_gate_w", "lstmp_0.w_0", "lstmp_0.w_1", "lstmp_0.b_0",
            "bw_layer2_gate_w", "lstmp_3.b_0", "softmax_weight", "softmax_bias"} <= set(expected)
    for name, shape in expected.items():
        assert read_tensor(model / name).shape == shape
    ckpt = run / "checkpoints" / "step-00000020"
    names = {p.name for p in ckpt.iterdir()}
    assert {"embedding_para_moment_0", "learning_rate_0", "trainer_state.json", "carry.npz",
            "model.json", "vocab.txt"} <= names
    assert (run / "inference" / f"{INFERENCE_PREFIX}.json").is_file()
    # paddle.static.load_vars reads the checkpoint by name, as in the fluid release.
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        params = [paddle.static.create_parameter(list(s), "float32", attr=paddle.ParamAttr(name=n))
                  for n, s in expected.items()]
    exe = paddle.static.Executor(paddle.CPUPlace())
    with paddle.static.scope_guard(paddle.static.Scope()):
        exe.run(startup)
        paddle.static.load_vars(exe, str(ckpt), main, vars=params)
        got = np.array(paddle.static.global_scope().find_var("lstmp_2.w_1").get_tensor())
    np.testing.assert_array_equal(got, read_tensor(model / "lstmp_2.w_1"))


def test_resume_reaches_the_parameters_of_an_uninterrupted_run(toy_corpus, tmp_path, static_scope):
    steps = {"train.max_steps": 12, "train.save_every": 4}
    train(tiny_config(toy_corpus, tmp_path / "whole", **steps))
    with paddle.static.scope_guard(paddle.static.Scope()):
        train(tiny_config(toy_corpus, tmp_path / "parts", **{**steps, "train.max_steps": 7}))
    with paddle.static.scope_guard(paddle.static.Scope()):
        train(tiny_config(toy_corpus, tmp_path / "parts", **steps), resume=True)
    whole = tmp_path / "whole" / "checkpoints" / "step-00000012"
    parts = tmp_path / "parts" / "checkpoints" / "step-00000012"
    a, b = checkpoint_arrays(whole), checkpoint_arrays(parts)
    assert set(a) == set(b), set(a) ^ set(b)
    assert "lstmp_1.w_0_moment_0" in a
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=1e-6, err_msg=name)
    for name in ("init_hidden", "init_cell"):
        np.testing.assert_allclose(np.load(whole / "carry.npz")[name], np.load(parts / "carry.npz")[name], atol=1e-6)
    state_a = json.loads((whole / "trainer_state.json").read_text())
    state_b = json.loads((parts / "trainer_state.json").read_text())
    assert state_a["reader"] == state_b["reader"] and state_a["tokens"] == state_b["tokens"]


def test_existing_run_is_not_overwritten_without_resume(toy_corpus, tmp_path, static_scope):
    cfg = tiny_config(toy_corpus, tmp_path / "run", **{"train.max_steps": 2})
    train(cfg)
    with pytest.raises(PipelineError, match="pass --resume"):
        train(cfg)


def numpy_elmo_layers(model_dir: Path, cfg, vocab, words: list[int]) -> np.ndarray:
    """bilm-tf's layers for one sentence, from the variable files and the fluid formulas."""
    def var(name):
        return read_tensor(model_dir / name).astype(np.float64)

    ids = [vocab.bos_id, *words, vocab.eos_id]
    emb = var("embedding_para")[ids]
    outputs = {}
    for d, k0, seq in (("fw", 0, emb), ("bw", cfg.num_layers, emb[::-1])):
        x, layers = seq[None], []
        for i in range(cfg.num_layers):
            k = k0 + i
            r, _, _ = numpy_lstmp(x, np.zeros((1, cfg.embed_size)), np.zeros((1, cfg.hidden_size)),
                                  var(f"{d}_layer{i + 1}_gate_w"), var(f"lstmp_{k}.w_0"), var(f"lstmp_{k}.w_1"),
                                  var(f"lstmp_{k}.b_0"), cfg.cell_clip, cfg.proj_clip)
            x = r + x if i > 0 else r
            layers.append(x[0] if d == "fw" else x[0][::-1])
        outputs[d] = layers
    stacked = [np.concatenate([emb, emb], -1)]
    stacked += [np.concatenate([f, b], -1) for f, b in zip(outputs["fw"], outputs["bw"])]
    return np.stack(stacked)[:, 1:-1]  # drop the boundary positions


def test_exported_program_computes_the_bilm_tf_layers(toy_corpus, tmp_path, static_scope):
    train(tiny_config(toy_corpus, tmp_path / "run", **{"train.max_steps": 5}))
    model_dir, inference = tmp_path / "run" / "model", tmp_path / "run" / "inference"
    cfg, vocab = read_model_dir(model_dir)
    ids = np.array([[4, 5, 6, 7, 8], [9, 10, 0, 0, 0], [3, 2, 11, 0, 0]], np.int64)
    lengths = np.array([5, 2, 3], np.int64)

    config = paddle.inference.Config(str(inference / f"{INFERENCE_PREFIX}.json"),
                                     str(inference / f"{INFERENCE_PREFIX}.pdiparams"))
    config.disable_glog_info()
    predictor = paddle.inference.create_predictor(config)
    for name, value in zip(predictor.get_input_names(), (ids, lengths)):
        handle = predictor.get_input_handle(name)
        handle.reshape(value.shape)
        handle.copy_from_cpu(value)
    predictor.run()
    got = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
    assert got.shape == (3, cfg.num_layers + 1, 5, 2 * cfg.embed_size)
    for row, n in enumerate(lengths):
        want = numpy_elmo_layers(model_dir, cfg, vocab, ids[row, :n].tolist())
        np.testing.assert_allclose(got[row, :, :n], want, atol=1e-5)
        assert np.abs(got[row, :, n:]).max(initial=0) == 0  # padding positions are zero
