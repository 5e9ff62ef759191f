"""ONNX export and ONNX Runtime serving compute what the Paddle programs do (to 1e-5)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import paddle
import pytest

from bilm.config import BiLMConfig, CharCNNConfig
from bilm.embedder import ElmoEmbedder, export_inference_model
from bilm.formats import load_model_variables, read_model_dir, write_model_arrays
from bilm.model import variable_shapes
from engine.errors import CheckpointError, PipelineError
from engine.inference import InferenceProgram, export_onnx
from reader.vocab import SPECIAL_TOKENS, Vocabulary

from helpers.luke import write_luke_model
from helpers.programs import assert_backends_agree

WORDS = ["the", "cat", "sees", "a", "dog", "river", "today", "."]
SENTENCES = [["the", "cat", "sees", "a", "dog", "."], ["a", "river"], ["the", "dog", "sees", "the", "river", "today"],
             ["unknown", "words", "too"], ["."]]


def random_model(directory: Path, **cfg) -> Path:
    """A model directory holding a small random biLM over WORDS (a character model with `input="char"`)."""
    cfg = BiLMConfig(vocab_size=len(WORDS) + 3, embed_size=8, hidden_size=16, num_layers=2, cell_clip=3,
                     proj_clip=3, softmax="full", **cfg)
    (directory.parent / "vocab.txt").write_text("".join(w + "\n" for w in [*SPECIAL_TOKENS, *WORDS]))
    rng = np.random.default_rng(0)
    arrays = {n: rng.normal(0, 0.3, s).astype(np.float32) for n, s in variable_shapes(cfg).items()}
    return write_model_arrays(directory, cfg, Vocabulary.load(directory.parent / "vocab.txt"), arrays)


def word_feeds(rows: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, steps + 1, rows)
    lengths[0] = steps
    ids = rng.integers(3, len(WORDS) + 3, (rows, steps)) * (np.arange(steps) < lengths[:, None])
    return {"word_ids": ids.astype(np.int64), "lengths": lengths.astype(np.int64)}


@pytest.mark.parametrize("max_length", [None, 7])
def test_elmo_export_runs_in_onnx_runtime(tmp_path, static_scope, max_length):
    model = random_model(tmp_path / "model")
    exe, place = paddle.static.Executor(paddle.CPUPlace()), paddle.CPUPlace()
    cfg, vocab = read_model_dir(model)
    load_model_variables(model, cfg, place, with_softmax=False)
    prefix = export_inference_model(exe, tmp_path / "export", cfg, vocab, max_length, onnx=True)
    # Any length runs one ONNX Loop per layer; a fixed one is unrolled.
    for steps, seed in [(max_length or 5, 0), (max_length or 11, 1)]:
        out = assert_backends_agree(prefix, word_feeds(4, steps, seed))
        assert out["elmo_layers"].shape == (4, 3, steps, 16)


def test_the_embedder_and_dump_agree_across_backends(tmp_path, static_scope):
    from bilm.cli import dump as dump

    model = random_model(tmp_path / "model")
    for stateful in (False, True):
        ours = ElmoEmbedder(model, backend="paddle", stateful=stateful, max_batch_size=2)
        onnx = ElmoEmbedder(model, stateful=stateful, max_batch_size=2, backend="onnxruntime")
        for i in range(0, len(SENTENCES), 2):  # stateful: each batch continues the rows' states
            np.testing.assert_allclose(onnx.embed(SENTENCES[i:i + 2]), ours.embed(SENTENCES[i:i + 2]), atol=1e-5)

    text = tmp_path / "sentences.txt"
    text.write_text("".join(" ".join(s) + "\n" for s in SENTENCES))
    for backend in ("paddle", "onnxruntime"):
        dump(["--model", str(model), "--input", str(text), "--output", str(tmp_path / f"{backend}.hdf5"),
              "--backend", backend])
    with h5py.File(tmp_path / "paddle.hdf5") as a, h5py.File(tmp_path / "onnxruntime.hdf5") as b:
        assert set(a) == set(b) == {*map(str, range(len(SENTENCES))), "sentence_to_index"}
        for i in range(len(SENTENCES)):
            np.testing.assert_allclose(b[str(i)][()], a[str(i)][()], atol=1e-5)


def test_a_character_model_runs_in_onnx_runtime(tmp_path, static_scope):
    char_cnn = CharCNNConfig(embed_size=4, filters=[[1, 4], [2, 8], [3, 8]], n_highway=1, max_characters=12)
    model = random_model(tmp_path / "model", input="char", char_cnn=char_cnn)
    ours = ElmoEmbedder(model, backend="paddle").embed(SENTENCES)
    onnx = ElmoEmbedder(model, backend="onnxruntime").embed(SENTENCES)
    np.testing.assert_allclose(onnx, ours, atol=1e-5)


def test_luke_export_runs_in_onnx_runtime(tmp_path, static_scope):
    from luke_static.cli import export as export

    luke = write_luke_model(tmp_path / "luke")
    prefix = export(["--model", str(luke), "--output", str(tmp_path / "export" / "luke"), "--onnx"])
    rng = np.random.default_rng(0)
    rows, words, entities = 2, 12, 3
    positions = np.full((rows, entities, 4), -1, np.int64)
    positions[:, :, 0], positions[:, 0, 1] = [1, 3, 5], 2
    feeds = {"input_ids": rng.integers(3, 100, (rows, words)), "attention_mask": np.ones((rows, words), np.int64),
             "token_type_ids": np.zeros((rows, words), np.int64), "entity_ids": rng.integers(1, 8, (rows, entities)),
             "entity_attention_mask": np.ones((rows, entities), np.int64),
             "entity_token_type_ids": np.zeros((rows, entities), np.int64), "entity_position_ids": positions}
    feeds["attention_mask"][1, 9:] = 0
    out = assert_backends_agree(prefix, {k: v.astype(np.int64) for k, v in feeds.items()})
    assert out["entity_last_hidden_state"].shape == (rows, entities, 32)


def test_a_program_paddle2onnx_cannot_convert_is_named_and_leaves_no_file(tmp_path, static_scope):
    # The default while loop writes a tensor array, which paddle2onnx 2.1.0 does not lower.
    model = random_model(tmp_path / "model")
    cfg, vocab = read_model_dir(model)
    load_model_variables(model, cfg, paddle.CPUPlace(), with_softmax=False)
    prefix = export_inference_model(paddle.static.Executor(paddle.CPUPlace()), tmp_path / "export", cfg, vocab)
    with pytest.raises(PipelineError, match=f"paddle2onnx could not convert {prefix}.json: "):
        export_onnx(prefix)
    assert sorted(p.name for p in (tmp_path / "export").glob("elmo.*")) == ["elmo.json", "elmo.pdiparams"]
    with pytest.raises(CheckpointError, match=r"no ONNX program at .*elmo\.onnx \(export with --onnx"):
        InferenceProgram(prefix, backend="onnxruntime")


def test_a_job_without_onnx_export_fails_before_training(tmp_path):
    from engine.config import load_config
    from engine.errors import ConfigError
    from engine.trainer import Trainer
    from tagger.job import TaggerRunConfig, TaggerTraining

    cfg = load_config(TaggerRunConfig, "configs/lac.yaml", ["train.export_onnx=true",
                                                                f"train.output_dir={tmp_path / 'run'}"])
    job = TaggerTraining.__new__(TaggerTraining)  # not constructed (no data needed): the check reads its class
    with pytest.raises(ConfigError, match="train.export_onnx: the TaggerTraining job has no ONNX export"):
        Trainer(job, cfg.train, cfg.optim, cfg.runtime)
    assert not (tmp_path / "run").exists()


def test_dump_takes_the_faster_backend_when_it_can(monkeypatch):
    import sys

    import engine.inference as inference

    assert inference.fastest_backend() == "onnxruntime"  # the test extras include onnx
    monkeypatch.setitem(sys.modules, "paddle2onnx", None)
    assert inference.fastest_backend() == "paddle"


def test_the_embedder_takes_strings_and_raw_text(tmp_path, static_scope):
    model = random_model(tmp_path / "model")
    words = ["the", "cat", "sees", "a", "dog", "today", "."]
    elmo = ElmoEmbedder(model, backend="paddle")
    want = elmo.embed_sentences([words])[0]
    assert want.shape == (3, 7, 16)
    np.testing.assert_array_equal(elmo.embed_sentence(" ".join(words)), want)  # split on whitespace
    raw = ElmoEmbedder(model, backend="paddle", segment="vocab")  # no spaces: cut into the vocabulary's words
    np.testing.assert_array_equal(raw.embed_sentence("thecatseesadogtoday."), want)
    np.testing.assert_array_equal(raw.embed_sentences([words], layers="top")[0], want[-1])
