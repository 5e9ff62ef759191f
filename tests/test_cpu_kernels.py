"""The compiled CPU kernels (engine/cpu_kernels.cc, `runtime.kernels: compiled`): each against its definition
or Paddle's op, and in training."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

from engine import cpu_kernels, ops
from engine.errors import ConfigError
from engine.variables import read_tensor

from helpers.bilm import tiny_config

ROOT = Path(__file__).resolve().parents[1]

needs_compiler = pytest.mark.skipif(shutil.which(os.environ.get("CXX", "c++")) is None, reason="no C++ compiler")


def run_dropout(x: np.ndarray, seed: int, p: float, index: int, upstream: np.ndarray | None = None):
    """(dropout(x), d(sum(dropout(x) · upstream))/dx) through a static program."""
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        xs = paddle.static.data("x", list(x.shape), "float32")
        xs.stop_gradient = False
        seeds = paddle.static.data("seed", [1], "int32")
        up = paddle.static.data("up", list(x.shape), "float32")
        out = cpu_kernels.counter_dropout(xs, seeds, p, index)
        (grad,) = paddle.static.gradients((out * up).sum(), [xs])
    feed = {"x": x, "seed": np.array([seed], np.int32), "up": x if upstream is None else upstream}
    return paddle.static.Executor(paddle.CPUPlace()).run(main, feed=feed, fetch_list=[out, grad])


@needs_compiler
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_counter_dropout_keeps_each_element_with_probability_1_minus_p_and_scales_it(static_scope, p):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 2.0, (7, 150_001)).astype(np.float32)  # an odd count: the last pair has one element
    upstream = rng.standard_normal(x.shape).astype(np.float32)
    out, grad = run_dropout(x, seed=12345, p=p, index=3, upstream=upstream)
    kept = out != 0
    n = kept.size
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(out[kept], x[kept] / np.float32(1 - p), rtol=2e-7)
    # The backward pass recomputes the mask: the gradient is upstream · mask / (1 - p).
    np.testing.assert_allclose(grad, np.where(kept, upstream / np.float32(1 - p), 0), rtol=2e-7)
    # Neighbouring elements (one hash draws two) and rows are independent: 2x2 agreement as for coins.
    for a, b in ((kept[:, 0::2], kept[:, 1::2]), (kept[:-1], kept[1:])):
        m = min(a.shape[1], b.shape[1])
        both = (a[:, :m] & b[:, :m]).mean()
        assert abs(both - (1 - p) ** 2) < 5 * np.sqrt((1 - p) ** 2 / a[:, :m].size)


@needs_compiler
def test_counter_dropout_masks_follow_seed_and_op_index(static_scope):
    x = np.ones((4, 50_000), np.float32)
    base = run_dropout(x, 7, 0.3, 1)[0] != 0
    np.testing.assert_array_equal(run_dropout(x, 7, 0.3, 1)[0] != 0, base)
    for other in (run_dropout(x, 8, 0.3, 1)[0] != 0, run_dropout(x, 7, 0.3, 2)[0] != 0):
        agreement = (other == base).mean()  # independent masks agree on p² + (1-p)² of the elements
        assert abs(agreement - (0.3**2 + 0.7**2)) < 0.01, agreement


@needs_compiler
def test_counter_dropout_is_the_same_with_one_or_two_threads(tmp_path):
    script = (
        "import sys, numpy as np, paddle\n"
        "from engine.cpu_kernels import counter_dropout\n"
        "paddle.enable_static()\n"
        "x = paddle.static.data('x', [3, 100_000], 'float32')\n"
        "seed = paddle.static.data('seed', [1], 'int32')\n"
        "out = counter_dropout(x, seed, 0.2, 5)\n"
        "feed = {'x': np.arange(1, 300_001, dtype=np.float32).reshape(3, -1), 'seed': np.array([99], np.int32)}\n"
        "np.save(sys.argv[1], paddle.static.Executor(paddle.CPUPlace()).run(feed=feed, fetch_list=[out])[0])\n"
    )
    outs = []
    for threads in (1, 2):
        path = tmp_path / f"t{threads}.npy"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "GLOG_minloglevel": "2"}
        done = subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        outs.append(np.load(path))
    assert 0.75 < (outs[0] != 0).mean() < 0.85
    np.testing.assert_array_equal(outs[0], outs[1])


def test_a_missing_compiler_is_one_line_naming_the_key(monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler")
    monkeypatch.setattr(cpu_kernels, "_loaded", None)  # as in a process that has not built it yet
    with pytest.raises(ConfigError, match="runtime.kernels: compiled .* needs a C\\+\\+ compiler"):
        cpu_kernels.kernels()


@needs_compiler
def test_the_attention_probabilities_are_softmax_then_counter_dropout(static_scope):
    rng = np.random.default_rng(1)
    shape = [2, 3, 5, 9]
    scores = (rng.standard_normal(shape) * 4).astype(np.float32)
    mask = np.zeros([2, 1, 1, 9], np.float32)
    mask[1, ..., 6:] = -10000.0
    upstream = rng.standard_normal(shape).astype(np.float32)
    results = {}
    for fused in (True, False):
        main, startup = paddle.static.Program(), paddle.static.Program()
        with paddle.static.program_guard(main, startup):
            x = paddle.static.data("x", shape, "float32")
            x.stop_gradient = False
            m = paddle.static.data("m", [2, 1, 1, 9], "float32")
            seed = paddle.static.data("seed", [1], "int32")
            if fused:
                out = cpu_kernels.kernels().attention_probs(x, m, seed, 0.25, 0.3, 4)[0]
            else:
                out = cpu_kernels.counter_dropout(paddle.nn.functional.softmax(x / 4.0 + m, axis=-1), seed, 0.3, 4)
            (grad,) = paddle.static.gradients((out * paddle.to_tensor(upstream)).sum(), [x])
        feed = {"x": scores, "m": mask, "seed": np.array([5], np.int32)}
        results[fused] = paddle.static.Executor(paddle.CPUPlace()).run(main, feed=feed, fetch_list=[out, grad])
    for got, want in zip(results[True], results[False]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert (results[True][0][1, ..., 6:] == 0).all()  # masked keys get no probability


def paddles_and_ours(x_value: np.ndarray, values: list[np.ndarray], build, kernel: str) -> dict[bool, list]:
    """{compiled: [out, d x, d each parameter]} for `build(x, *parameters)` built with Paddle's ops and with ours
    (checked to hold `custom_op.<kernel>`). The loss is Σ out·upstream + Σ x²: x feeds it twice, so a
    gradient a kernel hands back is added to another one."""
    results = {}
    for compiled in (True, False):
        main, startup = paddle.static.Program(), paddle.static.Program()
        with paddle.static.program_guard(main, startup):
            x = paddle.static.data("x", list(x_value.shape), "float32")
            x.stop_gradient = False
            parameters = [paddle.static.create_parameter(list(v.shape), "float32",
                                                         default_initializer=paddle.nn.initializer.Assign(v))
                          for v in values]
            if compiled:
                ops.use_compiled_kernels(main)
            out = build(x, *parameters)
            upstream = np.random.default_rng(9).standard_normal(out.shape).astype(np.float32)
            loss = (out * paddle.to_tensor(upstream)).sum() + (x * x).sum()
            grads = paddle.static.gradients(loss, [x, *parameters])
        assert (f"custom_op.{kernel}" in {op.name() for op in main.global_block().ops}) == compiled
        exe = paddle.static.Executor(paddle.CPUPlace())
        exe.run(startup)
        results[compiled] = exe.run(main, feed={"x": x_value}, fetch_list=[out, *grads])
    return results


@needs_compiler
def test_the_compiled_layer_norm_matches_paddles_with_its_gradients(static_scope):
    x_value = (np.random.default_rng(2).standard_normal([3, 7, 48]) * 3 + 1).astype(np.float32)
    values = [np.linspace(0.5, 1.5, 48).astype(np.float32), np.linspace(-1, 1, 48).astype(np.float32)]
    results = paddles_and_ours(x_value, values, lambda x, w, b: ops.layer_norm(x, w, b, 1e-5), "fused_layer_norm")
    for got, want in zip(results[True], results[False]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5)


@needs_compiler
@pytest.mark.parametrize("gelu", [False, True])
def test_the_compiled_bias_and_gelu_match_paddles_with_their_gradients(static_scope, gelu):
    rng = np.random.default_rng(4)
    x_value = rng.standard_normal([2, 5, 16]).astype(np.float32)
    values = [rng.standard_normal([16, 24]).astype(np.float32), rng.standard_normal(24).astype(np.float32)]
    build = lambda x, w, b: (ops.affine_gelu if gelu else ops.affine)(x, w, b, training=True)  # noqa: E731
    results = paddles_and_ours(x_value, values, build, "bias_gelu" if gelu else "bias_add")
    for got, want in zip(results[True], results[False]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@needs_compiler
@pytest.mark.parametrize("accumulate", [1, 2])
def test_the_compiled_adamw_update_is_paddles(static_scope, accumulate):
    from engine.job import TrainGraph
    from engine.optim import OptimConfig
    from engine.step import build_step_programs

    rng = np.random.default_rng(3)
    batches = [(rng.standard_normal([4, 3]).astype(np.float32), rng.standard_normal([4, 2]).astype(np.float32))
               for _ in range(6)]

    def graph():
        x, y = paddle.static.data("x", [4, 3], "float32"), paddle.static.data("y", [4, 2], "float32")
        weight = paddle.static.create_parameter([3, 2], "float32", name="fc.weight")
        bias = paddle.static.create_parameter([2], "float32", name="fc.bias")  # not decayed
        return TrainGraph(feeds={"x": x, "y": y}, loss=((paddle.matmul(x, weight) + bias - y) ** 2).mean())

    optim = OptimConfig(name="adamw", learning_rate=0.05, beta2=0.98, epsilon=1e-6, weight_decay=0.1,
                        schedule="linear", warmup_ratio=0.3, accumulate_steps=accumulate)
    final = {}
    for compiled in (True, False):
        with paddle.static.scope_guard(paddle.static.Scope()):
            programs = build_step_programs(graph, optim, total_steps=len(batches) // accumulate,
                                           compiled_kernels=compiled)
            applying = programs.update or programs.step
            kinds = {op.name() for op in applying.global_block().ops}
            assert ("custom_op.adamw__" in kinds) == compiled and ("pd_op.adamw_" in kinds) != compiled
            exe = paddle.static.Executor(paddle.CPUPlace())
            for startup in programs.startups:
                exe.run(startup)
            for i, (x, y) in enumerate(batches):
                exe.run(programs.step, feed={"x": x, "y": y})
                if (i + 1) % accumulate == 0:
                    if programs.update is not None:
                        exe.run(programs.update)
                    programs.scheduler.step()
            scope = paddle.static.global_scope()
            final[compiled] = {name: np.array(scope.find_var(name).get_tensor()) for name in (
                "fc.weight", "fc.bias", "fc.weight_moment1_0", "fc.weight_moment2_0", "fc.bias_beta2_pow_acc_0")}
    for name, want in final[False].items():
        np.testing.assert_allclose(final[True][name], want, rtol=1e-5, atol=1e-7, err_msg=name)


@needs_compiler
def test_a_luke_step_with_compiled_kernels_uses_them_and_learns(tmp_path, static_scope):
    from engine.job import TrainGraph
    from engine.ops import SEED_FEED
    from engine.optim import OptimConfig
    from engine.step import build_step_programs
    from engine.variables import load_variables
    from luke_static.formats import load_luke_config
    from luke_static.heads import question_answering
    from luke_static.model import variable_shapes

    from helpers.luke import inputs, write_luke_model

    model = write_luke_model(tmp_path / "luke", entity_vocab_size=20)  # inputs() holds entity ids below 20
    cfg = load_luke_config(model)
    batch = {**inputs(), "start_positions": np.array([1, 2]), "end_positions": np.array([3, 2]),
             SEED_FEED: np.array([1], np.int32)}

    def graph():
        g = question_answering(cfg, with_entities=True, training=True)
        return TrainGraph(feeds=g.feeds, loss=g.loss)

    optim = OptimConfig(name="adamw", learning_rate=1e-2, weight_decay=0.01)
    programs = build_step_programs(graph, optim, total_steps=30, compiled_kernels=True)
    kinds = {op.name() for op in programs.step.global_block().ops}
    assert {"custom_op.counter_dropout", "custom_op.attention_probs", "custom_op.fused_layer_norm",
            "custom_op.bias_add", "custom_op.bias_gelu", "custom_op.adamw__"} <= kinds
    assert not kinds & {"pd_op.dropout", "pd_op.softmax", "pd_op.layer_norm", "pd_op.gelu", "pd_op.adamw_"}
    exe = paddle.static.Executor(paddle.CPUPlace())
    for startup in programs.startups:
        exe.run(startup)
    load_variables(model, variable_shapes(cfg, with_pooler=False), paddle.CPUPlace())
    losses = [float(exe.run(programs.step, feed={**batch, SEED_FEED: np.array([step], np.int32)},
                            fetch_list=[programs.graph.loss])[0]) for step in range(30)]
    assert np.isfinite(losses).all() and np.mean(losses[-5:]) < 0.3 * np.mean(losses[:5]), losses


def fit(cfg, resume: bool = False):
    """(the final metrics, the names of the step program's ops)."""
    from bilm.pretrain import ElmoPretraining
    from engine.trainer import Trainer

    trainer = Trainer(ElmoPretraining(cfg), cfg.train, cfg.optim, cfg.runtime)
    metrics = trainer.fit(resume=resume)
    return metrics, {op.name() for op in trainer.programs.step.global_block().ops}


@needs_compiler
@pytest.mark.slow
def test_a_run_with_compiled_kernels_resumes_exactly_and_learns_as_with_paddles(toy_corpus, tmp_path, static_scope,
                                                                                 capsys):
    steps = {"train.max_steps": 12, "train.save_every": 4, "runtime.kernels": "compiled"}
    counter, ops = fit(tiny_config(toy_corpus, tmp_path / "whole", **steps))
    assert "custom_op.counter_dropout" in ops and "pd_op.dropout" not in ops
    with paddle.static.scope_guard(paddle.static.Scope()):
        fit(tiny_config(toy_corpus, tmp_path / "parts", **{**steps, "train.max_steps": 7}))
    with paddle.static.scope_guard(paddle.static.Scope()):
        fit(tiny_config(toy_corpus, tmp_path / "parts", **steps), resume=True)
    whole, parts = (tmp_path / run / "checkpoints" / "step-00000012" for run in ("whole", "parts"))
    for path in whole.glob("lstmp_*"):
        np.testing.assert_allclose(read_tensor(path), read_tensor(parts / path.name), atol=1e-6, err_msg=path.name)
    # Resumed with the other kernels, it trains on (the optimizer state has the same names) and says why the
    # masks differ from the interrupted run's.
    capsys.readouterr()
    with paddle.static.scope_guard(paddle.static.Scope()):
        fit(tiny_config(toy_corpus, tmp_path / "parts", **{**steps, "train.max_steps": 16,
                                                           "runtime.kernels": "paddle"}), resume=True)
    assert "the checkpoint was written with kernels compiled, this run uses paddle" in capsys.readouterr().out
    with paddle.static.scope_guard(paddle.static.Scope()):
        reference, ops = fit(tiny_config(toy_corpus, tmp_path / "paddle", **{**steps, "runtime.kernels": "paddle"}))
    assert "pd_op.dropout" in ops
    # Other masks, the same training: both reach about the same dev perplexity.
    assert abs(np.log(counter["ppl"]) - np.log(reference["ppl"])) < 0.1, (counter, reference)
