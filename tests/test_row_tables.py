"""Row-wise table updates and one-product weight gradients (`engine.ops` gradient sources,
applied by `engine.optim`) equal the dense, per-step computation they replace."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from bilm.config import BiLMConfig
from bilm.lm import build_lm, zero_states
from engine.job import TrainGraph
from engine.ops import SEED_FEED, gather_rows
from engine.optim import OptimConfig, row_wise_applies
from engine.step import build_step_programs
from engine.variables import persistable_shapes
from reader.sampling import LogUniformSampler

B, T, V = 4, 5, 60


def test_gather_rows_reads_each_row_once_and_finds_every_id(static_scope):
    ids = np.random.default_rng(0).integers(0, 40, (30, 10))
    table = np.random.default_rng(1).normal(size=(50, 3)).astype(np.float32)
    main = paddle.static.Program()
    with paddle.static.program_guard(main, paddle.static.Program()):
        gather, positions = gather_rows(paddle.assign(table), paddle.static.data("ids", [-1, 10], "int64"))
        looked_up = paddle.gather(gather.rows, positions.flatten())
    got = paddle.static.Executor().run(main, feed={"ids": ids}, fetch_list=[gather.ids, gather.rows, looked_up])
    np.testing.assert_array_equal(got[0], np.unique(ids))
    np.testing.assert_array_equal(got[1], table[np.unique(ids)])
    np.testing.assert_array_equal(got[2], table[ids.ravel()])


def lm_graph(cfg: BiLMConfig, row_wise: bool) -> TrainGraph:
    # row_wise: the graph hands the engine its row gathers and weight products; else plain autodiff.
    g = build_lm(cfg, B, T, training=True, bos_id=0, eos_id=1, fast_gradients=row_wise)
    return TrainGraph(feeds=g.feeds, loss=g.loss, objective=g.loss * float(T), gradient_sources=g.gradient_sources)


def train_steps(cfg: BiLMConfig, optim: OptimConfig, row_wise: bool, steps: int = 3):
    """Persistable values after `steps` updates on fixed random batches, and the step program's op names."""
    rng = np.random.default_rng(1)
    with paddle.static.scope_guard(paddle.static.Scope()):
        programs = build_step_programs(lambda: lm_graph(cfg, row_wise), optim, total_steps=steps)
        exe = paddle.static.Executor(paddle.CPUPlace())
        for startup in programs.startups:
            exe.run(startup)
        for step in range(steps):
            feed = {n: rng.integers(3, V // 2, (B, T)) for n in
                    ("token_ids", "next_token_ids", "token_ids_reverse", "next_token_ids_reverse")}
            feed.update(zero_states(cfg, B))
            feed[SEED_FEED] = np.array([step], np.int32)
            if cfg.softmax == "sampled":
                neg_ids, tries = LogUniformSampler(V, cfg.num_samples).draw(rng)
                feed.update({"neg_ids": neg_ids, "num_tries": np.array([tries], np.float32)})
            exe.run(programs.step, feed=feed)
        scope = paddle.static.global_scope()
        values = {n: np.array(scope.find_var(n).get_tensor()) for n in persistable_shapes(programs.step)}
        ops = {op.name() for op in programs.step.global_block().ops}
    return values, ops


@pytest.mark.parametrize("optimizer, softmax", [("adagrad", "sampled"), ("sgd", "sampled"), ("adagrad", "full"),
                                                ("adam", "sampled")])
def test_row_wise_updates_equal_dense_updates(static_scope, optimizer, softmax):
    cfg = BiLMConfig(vocab_size=V, embed_size=8, hidden_size=16, num_layers=2, num_samples=12, softmax=softmax,
                     dropout=0.1)
    # A small clip norm, so the global norm over dense and row gradients decides every step.
    # Adam's step is about ±lr whatever the gradient's size, so a near-zero
    # gradient whose last bits differ (another summation order) can move a
    # weight by up to lr; a small lr and a damping epsilon keep that visible
    # only in the last digits.
    lr, epsilon = (0.01, 1e-3) if optimizer == "adam" else (0.3, 1e-6)
    optim = OptimConfig(name=optimizer, learning_rate=lr, initial_accumulator_value=1.0, epsilon=epsilon,
                        grad_clip=0.5)
    dense, dense_ops = train_steps(cfg, optim, row_wise=False)
    rows, row_ops = train_steps(cfg, optim, row_wise=True)
    assert set(rows) == set(dense)  # same optimizer state names: checkpoints interchange
    for name in dense:
        np.testing.assert_allclose(rows[name], dense[name], rtol=1e-5, atol=1e-6, err_msg=name)
    if optimizer == "adam":  # moments move every row: tables stay dense, the LSTM weights still use products
        assert "pd_op.scatter_" not in row_ops
        return
    assert "pd_op.scatter_" in row_ops and "pd_op.scatter_" not in dense_ops
    moved = rows["embedding_para"] != train_steps(cfg, optim, row_wise=True, steps=0)[0]["embedding_para"]
    assert 0 < moved.any(axis=1).sum() < V  # only the rows the batches read moved


def test_row_wise_updates_only_where_exact():
    assert row_wise_applies(OptimConfig(name="adagrad"), world=1)
    assert row_wise_applies(OptimConfig(name="sgd"), world=1)
    assert not row_wise_applies(OptimConfig(name="adam"), world=1)  # moments would move untouched rows
    assert not row_wise_applies(OptimConfig(name="adagrad"), world=2)  # ranks read different rows
    assert not row_wise_applies(OptimConfig(name="adagrad", accumulate_steps=2), world=1)
