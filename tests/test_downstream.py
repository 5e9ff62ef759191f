"""ELMo in a user's own static network: bilm.emb / bilm.elmo_encoder / bilm.load_pretrained."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

import bilm
from bilm.config import BiLMConfig
from bilm.formats import write_model_arrays
from bilm.model import variable_shapes
from engine.errors import CheckpointError
from engine.variables import write_tensor
from reader.vocab import Vocabulary

WORDS = ["the", "cat", "sat", "on", "a", "mat"]


@pytest.fixture
def model_dir(tmp_path):
    (tmp_path / "v.txt").write_text("\n".join(["<S>", "</S>", "<UNK>", *WORDS]) + "\n")
    vocab = Vocabulary.load(tmp_path / "v.txt")
    cfg = BiLMConfig(vocab_size=len(vocab), embed_size=4, hidden_size=6, num_layers=2, softmax="full")
    rng = np.random.default_rng(0)
    arrays = {n: rng.normal(0, 0.5, s).astype(np.float32) for n, s in variable_shapes(cfg).items()}
    return write_model_arrays(tmp_path / "model", cfg, vocab, arrays)


def build(model, **kwargs):
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        ids = paddle.static.data("word_ids", [-1, -1], "int64")
        lengths = paddle.static.data("lengths", [-1], "int64")
        vectors = bilm.elmo_encoder(bilm.emb(ids, model), lengths, model, **kwargs)
    return main, startup, vectors


def test_vectors_are_the_mix_of_the_layers_and_batch_independent(model_dir, static_scope):
    from bilm.embedder import ElmoEmbedder

    model = bilm.ElmoModel.from_dir(model_dir)
    main, startup, vectors = build(model)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    report = bilm.load_pretrained(exe, model_dir, main)
    assert len(report.loaded) == 1 + 4 * 4 and not report.missing
    ids = np.array([[3, 4, 5, 6], [7, 8, 0, 0], [4, 0, 0, 0]], np.int64)
    lengths = np.array([4, 2, 1], np.int64)
    (batch,) = exe.run(main, feed={"word_ids": ids, "lengths": lengths}, fetch_list=[vectors])
    assert batch.shape == (3, 4, model.dim) and np.abs(batch[1, 2:]).max() == 0
    for row in range(3):
        n = lengths[row]
        (alone,) = exe.run(main, feed={"word_ids": ids[row:row + 1, :n], "lengths": lengths[row:row + 1]},
                           fetch_list=[vectors])
        np.testing.assert_allclose(alone[0], batch[row, :n], atol=1e-6)
    # ELMo_w starts at zero and ELMo_gamma at one: the mix is the mean of the layers.
    with paddle.static.scope_guard(paddle.static.Scope()):
        layers = ElmoEmbedder(model_dir, backend="paddle").embed([[model.vocab.tokens[i] for i in ids[0]]])
    np.testing.assert_allclose(batch[0], layers[0].mean(axis=0), atol=1e-5)


def test_frozen_bilm_and_trainable_mix(model_dir, static_scope):
    model = bilm.ElmoModel.from_dir(model_dir)
    main, startup, vectors = build(model)
    with paddle.static.program_guard(main, startup):
        target = paddle.static.data("target", [-1, -1, model.dim], "float32")
        loss = ((vectors - target) ** 2).mean()
        paddle.optimizer.Adam(0.1).minimize(loss)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    bilm.load_pretrained(exe, model_dir, main)
    names = list(variable_shapes(model.cfg, with_softmax=False)) + ["ELMo_w", "ELMo_gamma"]
    before = {n: np.array(static_scope.find_var(n).get_tensor()) for n in names}
    feed = {"word_ids": np.array([[3, 4, 5]]), "lengths": np.array([3]),
            "target": np.ones((1, 3, model.dim), np.float32)}
    for _ in range(3):
        exe.run(main, feed=feed, fetch_list=[loss])
    for n in names:
        after = np.array(static_scope.find_var(n).get_tensor())
        if n.startswith("ELMo_"):
            assert np.abs(after - before[n]).max() > 1e-4, n
        else:
            np.testing.assert_array_equal(after, before[n], err_msg=n)


def test_loading_reports_and_rejects(model_dir, static_scope):
    model = bilm.ElmoModel.from_dir(model_dir)
    main, startup, _ = build(model)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    write_tensor(model_dir / "unrelated_variable", np.ones(3, np.float32))  # ignored
    assert "loaded 17 biLM variables" == str(bilm.load_pretrained(exe, model_dir, main))

    (model_dir / "lstmp_2.w_1").unlink()
    with pytest.raises(CheckpointError, match="missing variable file.*lstmp_2.w_1"):
        bilm.load_pretrained(exe, model_dir, main)
    report = bilm.load_pretrained(exe, model_dir, main, allow_missing=True)
    assert report.missing == ["lstmp_2.w_1"]

    write_tensor(model_dir / "lstmp_2.w_1", np.ones((5, 5), np.float32))
    with pytest.raises(CheckpointError, match=r"'lstmp_2.w_1' has shape \[5, 5\] in the file but \[6, 4\]"):
        bilm.load_pretrained(exe, model_dir, main)


def test_two_mixes_share_one_bilm_and_train_their_own_weights(model_dir, static_scope):
    model = bilm.ElmoModel.from_dir(model_dir)
    one, _, _ = build(model)
    main, startup, mixes = build(model, num_mixes=2)
    ops = lambda program: [op.name() for op in program.global_block().ops]  # noqa: E731
    # The biLM (its recurrence and products) is built once; the second mix adds only its own ops.
    assert ops(main).count("pd_op.while") == ops(one).count("pd_op.while") >= 1
    assert ops(main).count("pd_op.matmul") == ops(one).count("pd_op.matmul")
    names = {p.name for p in main.global_block().all_parameters()}
    assert {"elmo_mix_0_w", "elmo_mix_0_gamma", "elmo_mix_1_w", "elmo_mix_1_gamma"} <= names
    assert "ELMo_w" not in names
    with paddle.static.program_guard(main, startup):
        loss = (mixes[0] ** 2).mean() - (mixes[1] ** 2).mean()  # pulls the two mixes apart
        paddle.optimizer.SGD(0.5).minimize(loss)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    bilm.load_pretrained(exe, model_dir, main)
    exe.run(main, feed={"word_ids": np.array([[3, 4, 5]]), "lengths": np.array([3])}, fetch_list=[loss])
    w0, w1 = (np.array(static_scope.find_var(f"elmo_mix_{i}_w").get_tensor()) for i in (0, 1))
    assert np.abs(w0 - w1).max() > 1e-4


def test_layer_norm_mixes_normalised_layers_as_allennlp(model_dir, static_scope):
    model = bilm.ElmoModel.from_dir(model_dir)
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        ids = paddle.static.data("word_ids", [-1, -1], "int64")
        lengths_feed = paddle.static.data("lengths", [-1], "int64")
        mixed = bilm.elmo(ids, lengths_feed, model, layer_norm=True)
        layers = bilm.elmo(ids, lengths_feed, model, all_layers=True)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    bilm.load_pretrained(exe, model_dir, main)
    lengths = np.array([4, 2, 1])
    feed = {"word_ids": np.array([[3, 4, 5, 6], [7, 8, 0, 0], [4, 0, 0, 0]]), "lengths": lengths}
    got, layer_values = exe.run(main, feed=feed, fetch_list=[mixed, layers])
    # AllenNLP's ScalarMix with do_layer_norm: per layer one mean and variance over the real positions.
    mask = (np.arange(4)[None] < lengths[:, None]).astype(np.float64)[:, :, None]  # [B, T, 1]
    want = 0.0
    for k in range(layer_values.shape[1]):
        x = layer_values[:, k].astype(np.float64)
        count = mask.sum() * x.shape[-1]
        mean = (x * mask).sum() / count
        variance = (((x - mean) * mask) ** 2).sum() / count
        want = want + (x - mean) / np.sqrt(variance + 1e-12) / layer_values.shape[1]
    np.testing.assert_allclose(got[mask[..., 0] == 1], want[mask[..., 0] == 1], atol=1e-5)


def test_a_trainable_bilm_gets_the_gradient_of_the_task(model_dir, static_scope):
    model = bilm.ElmoModel.from_dir(model_dir)
    with paddle.static.program_guard(paddle.static.Program(), paddle.static.Program()):
        with pytest.raises(ValueError, match="trainable=True needs a fixed sentence length"):
            bilm.elmo(paddle.static.data("any_length", [-1, -1], "int64"),
                      paddle.static.data("lengths", [-1], "int64"), model, trainable=True)
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        lengths = paddle.static.data("lengths", [-1], "int64")
        ids = paddle.static.data("word_ids", [-1, 3], "int64")  # a fixed length: the recurrence unrolls
        target = paddle.static.data("target", [-1, 3, model.dim], "float32")
        loss = ((bilm.elmo(ids, lengths, model, trainable=True) - target) ** 2).sum()
        names = ("lstmp_0.b_0", "embedding_para", "bw_layer2_gate_w")
        params = {p.name: p for p in main.global_block().all_parameters() if p.name in names}
        grads = paddle.static.gradients(loss, [params[n] for n in names])
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    bilm.load_pretrained(exe, model_dir, main)
    rng = np.random.default_rng(1)
    feed = {"word_ids": np.array([[3, 4, 5], [6, 7, 0]]), "lengths": np.array([3, 2]),
            "target": rng.normal(size=(2, 3, model.dim)).astype(np.float32)}
    computed = dict(zip(names, exe.run(main, feed=feed, fetch_list=grads)))

    def loss_at(name, index, delta):
        value = np.array(static_scope.find_var(name).get_tensor())
        shifted = value.copy()
        shifted[index] += delta
        static_scope.find_var(name).get_tensor().set(shifted, paddle.CPUPlace())
        (out,) = exe.run(main, feed=feed, fetch_list=[loss])
        static_scope.find_var(name).get_tensor().set(value, paddle.CPUPlace())
        return float(out)

    for name in names:
        for index in zip(*(rng.integers(0, n, 3) for n in computed[name].shape)):
            if name == "embedding_para":
                index = (4, index[1])  # a row the batch reads
            numeric = (loss_at(name, index, 1e-2) - loss_at(name, index, -1e-2)) / 2e-2
            assert computed[name][index] == pytest.approx(numeric, rel=2e-2, abs=2e-3), (name, index)
    assert np.abs(computed["lstmp_0.b_0"]).max() > 1e-3  # the task's gradient reaches the biLM


def test_a_trainable_bilm_changes_with_the_task(model_dir, static_scope):
    model = bilm.ElmoModel.from_dir(model_dir)
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        ids = paddle.static.data("word_ids", [-1, 3], "int64")
        lengths = paddle.static.data("lengths", [-1], "int64")
        loss = (bilm.elmo(ids, lengths, model, trainable=True) ** 2).mean()
        paddle.optimizer.SGD(0.5).minimize(loss)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    bilm.load_pretrained(exe, model_dir, main)
    names = list(variable_shapes(model.cfg, with_softmax=False))
    before = {n: np.array(static_scope.find_var(n).get_tensor()) for n in names}
    exe.run(main, feed={"word_ids": np.array([[3, 4, 5]]), "lengths": np.array([3])}, fetch_list=[loss])
    changed = [n for n in names if np.abs(np.array(static_scope.find_var(n).get_tensor()) - before[n]).max() > 0]
    assert set(changed) == set(names)  # every biLM variable, the token table included
