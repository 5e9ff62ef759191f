"""The fluid release's checkpoints (variable files under the fluid names, nothing else) as models here."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from bilm.config import BiLMConfig
from bilm.model import create_params
from engine.errors import CheckpointError
from reader.vocab import Vocabulary

WORDS = ["<S>", "</S>", "<UNK>", "的", "是", "中国", "北京", "我们"]


def write_fluid_checkpoint(root, with_softmax: bool, optimizer_state: bool = True):
    """What the release's training saved, written by Paddle's own `save_vars` under the fluid names: a
    2-layer biLM (projection 4, cell 6), optionally its softmax, Adagrad moments and learning rate."""
    cfg = BiLMConfig(vocab_size=len(WORDS), embed_size=4, hidden_size=6, num_layers=2)
    main, startup = paddle.static.Program(), paddle.static.Program()
    startup.random_seed = 7
    with paddle.static.program_guard(main, startup):
        params = create_params(cfg, with_softmax=with_softmax).variables
        extra = []
        if optimizer_state:
            extra = [paddle.static.create_parameter(list(p.shape), "float32", attr=paddle.ParamAttr(
                name=f"{name}_moment_0")) for name, p in params.items()]
            extra.append(paddle.static.create_parameter([1], "float32", attr=paddle.ParamAttr(
                name="learning_rate_0", initializer=paddle.nn.initializer.Constant(0.2), trainable=False)))
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    root.mkdir(parents=True, exist_ok=True)
    paddle.static.save_vars(exe, str(root), main, vars=list(params.values()) + extra)
    (root.parent / "vocabulary_min5k.txt").write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    return root, root.parent / "vocabulary_min5k.txt", {n: np.array(paddle.static.global_scope().find_var(n)
                                                                     .get_tensor()) for n in params}


@pytest.mark.parametrize("with_softmax", [True, False])
def test_a_fluid_checkpoint_becomes_a_model_every_command_takes(tmp_path, static_scope, with_softmax, capsys):
    import bilm
    from bilm.cli import dump, import_fluid
    from bilm.formats import read_model_arrays, read_model_dir

    checkpoint, vocab, arrays = write_fluid_checkpoint(tmp_path / "elmo_checkpoint", with_softmax)
    import_fluid(["--checkpoint", str(checkpoint), "--vocab", str(vocab), "--output", str(tmp_path / "model")])
    out = capsys.readouterr().out
    assert "imported a 2-layer biLM (cell 6, projection 4, vocabulary 8" in out
    assert ("with its softmax" if with_softmax else "without its softmax") in out
    assert "left out (optimizer state, other files):" in out and "learning_rate_0" in out
    cfg, _ = read_model_dir(tmp_path / "model")
    assert (cfg.embed_size, cfg.hidden_size, cfg.num_layers, cfg.cell_clip, cfg.proj_clip, cfg.state_reset) == \
        (4, 6, 2, 3.0, 3.0, "stream")
    imported = read_model_arrays(tmp_path / "model", cfg)
    assert set(imported) == set(arrays)
    for name, value in arrays.items():
        np.testing.assert_array_equal(imported[name], value, err_msg=name)
    assert bilm.ElmoModel.from_dir(tmp_path / "model").vocab.tokens == WORDS
    (tmp_path / "text.txt").write_text("我们 是 中国\n北京\n", encoding="utf-8")
    assert dump(["--model", str(tmp_path / "model"), "--input", str(tmp_path / "text.txt"),
                 "--output", str(tmp_path / "v.hdf5")])["tokens"] == 4


def test_a_vocabulary_that_does_not_fit_is_named(tmp_path, static_scope):
    from bilm.formats import import_fluid

    checkpoint, vocab, _ = write_fluid_checkpoint(tmp_path / "ckpt", with_softmax=False, optimizer_state=False)
    vocab.write_text("\n".join(WORDS[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match="embedding_para has 8 rows but the vocabulary has 7 entries"):
        import_fluid(checkpoint, vocab, tmp_path / "model")
    with pytest.raises(CheckpointError, match="no embedding_para"):
        import_fluid(tmp_path, vocab, tmp_path / "model")
    assert not (tmp_path / "model").exists()
    assert Vocabulary.load(vocab)  # the vocabulary itself was fine
