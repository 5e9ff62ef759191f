"""ELMo pretraining started from another model: this project's, a fluid-release directory, another vocabulary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import paddle
import pytest

from engine.errors import CheckpointError, ConfigError
from engine.variables import get_value, read_tensor, write_tensor
from reader.vocab import Vocabulary

from helpers.bilm import tiny_config, train
from helpers.corpus import write_toy_corpus

pytestmark = pytest.mark.slow  # the module's source model trains 120 steps; every test trains again from it


def first_loss(run_dir: Path) -> float:
    return json.loads((run_dir / "train_log.jsonl").read_text().splitlines()[0])["loss"]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny biLM trained 120 steps on the toy corpus: its run directory and corpus."""
    root = tmp_path_factory.mktemp("source")
    corpus = write_toy_corpus(root / "corpus")
    with paddle.static.scope_guard(paddle.static.Scope()):
        train(tiny_config(corpus, root / "run", **{"train.max_steps": 120}))
    return root / "run", corpus


def test_a_model_of_this_project_starts_the_run_where_it_ended(source, tmp_path, static_scope, capsys):
    run, corpus = source
    one_step = {"train.max_steps": 1, "train.log_every": 1}
    with paddle.static.scope_guard(paddle.static.Scope()):
        train(tiny_config(corpus, tmp_path / "fresh", **one_step))
    train(tiny_config(corpus, tmp_path / "init", **one_step, **{"train.init_from": run / "model",
                                                                 "model.forget_bias": 1.0}))
    out = capsys.readouterr().out
    assert f"initialised from {run / 'model'}" in out and "model.forget_bias 0.0; this run uses 1.0" in out
    # Far below a fresh model's first step: the source's own loss after 120 steps is about where it starts.
    assert first_loss(tmp_path / "init") < first_loss(tmp_path / "fresh") - 1.0


def test_a_fluid_directory_without_softmax(source, tmp_path, static_scope, capsys):
    run, corpus = source
    fluid = tmp_path / "baike"  # variable files only, no softmax (as the released baike checkpoint)
    fluid.mkdir()
    for path in (run / "model").iterdir():
        if path.name not in ("model.json", "vocab.txt", "softmax_weight", "softmax_bias"):
            write_tensor(fluid / path.name, read_tensor(path))
    train(tiny_config(corpus, tmp_path / "init", **{"train.max_steps": 1, "train.init_from": fluid,
                                                    "optim.learning_rate": 0.0}))
    assert "has no softmax_weight: it starts freshly initialised" in capsys.readouterr().out
    for name in ("embedding_para", "lstmp_0.w_0", "bw_layer2_gate_w"):
        np.testing.assert_array_equal(get_value(name), read_tensor(fluid / name), err_msg=name)
    assert not np.array_equal(get_value("softmax_weight"), read_tensor(run / "model" / "softmax_weight"))


def test_another_vocabulary_copies_the_shared_rows_by_word(source, tmp_path, static_scope, capsys):
    run, corpus = source
    theirs = Vocabulary.load(run / "model" / "vocab.txt").tokens
    ours = theirs[:3] + ["brandnew", "words"] + theirs[3:][::-1][:-2]  # reordered, two new, two dropped
    (tmp_path / "vocab.txt").write_text("\n".join(ours) + "\n")
    train(tiny_config(corpus, tmp_path / "init", **{"train.max_steps": 1, "train.init_from": run / "model",
                                                    "data.vocab": tmp_path / "vocab.txt", "optim.learning_rate": 0.0,
                                                    "train.init_optimizer": True}))
    out = capsys.readouterr().out
    shared = len(set(ours) & set(theirs))
    assert f"embedding_para: {shared:,} rows copied by word, {len(ours) - shared:,} new" in out
    assert "the vocabularies differ, so the optimizer state starts fresh" in out
    for name in ("embedding_para", "softmax_weight", "softmax_bias"):
        source_rows, rows = read_tensor(run / "model" / name), get_value(name)
        for i, word in enumerate(ours):
            if word in theirs:
                np.testing.assert_array_equal(rows[i], source_rows[theirs.index(word)], err_msg=f"{name} {word}")
            else:
                assert not np.array_equal(rows[i], np.zeros_like(rows[i])) or name == "softmax_bias"


def test_optimizer_state_comes_along_when_asked(source, tmp_path, static_scope, capsys):
    run, corpus = source
    checkpoint = next((run / "checkpoints").iterdir())
    moments = {}
    for with_state in (True, False):  # the same parameters, batch and gradient; lr 0 leaves them alone
        with paddle.static.scope_guard(paddle.static.Scope()):
            train(tiny_config(corpus, tmp_path / str(with_state), **{
                "train.max_steps": 1, "train.init_from": checkpoint, "train.init_optimizer": with_state,
                "optim.learning_rate": 0.0}))
            moments[with_state] = get_value("lstmp_0.w_0_moment_0")
    assert "optimizer state: 19 of 19 accumulators" in capsys.readouterr().out  # every biLM variable's
    # Adagrad adds the same squared gradient to the source's accumulator or to a fresh one (1.0).
    saved = read_tensor(checkpoint / "lstmp_0.w_0_moment_0")
    np.testing.assert_allclose(moments[True] - moments[False], saved - 1.0, atol=1e-5)
    assert saved.max() > 1.5


def test_what_cannot_be_a_start_is_named(source, tmp_path, static_scope):
    run, corpus = source
    wrong = r"'fw_layer1_gate_w' has shape \[16, 128\] in .* but \[16, 64\] in this run"
    with pytest.raises(CheckpointError, match=wrong):
        train(tiny_config(corpus, tmp_path / "a", **{"train.init_from": run / "model", "model.hidden_size": 16}))
    lonely = tmp_path / "lonely"  # variable files, no vocabulary, and rows that are not this run's words
    lonely.mkdir()
    write_tensor(lonely / "embedding_para", np.zeros((5, 16), np.float32))
    with pytest.raises(ConfigError, match="has no vocab.txt, and its embedding_para rows .5. are not"):
        train(tiny_config(corpus, tmp_path / "b", **{"train.init_from": lonely}))
