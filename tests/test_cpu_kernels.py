"""The compiled CPU kernels (engine/cpu_kernels.cc): counter-based dropout against its definition, and in training."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

from engine import cpu_kernels
from engine.errors import ConfigError
from engine.variables import read_tensor

from helpers.bilm import tiny_config

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CXX", "c++")) is None, reason="no C++ compiler")


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


def test_counter_dropout_masks_follow_seed_and_op_index(static_scope):
    x = np.ones((4, 50_000), np.float32)
    base = run_dropout(x, 7, 0.3, 1)[0] != 0
    np.testing.assert_array_equal(run_dropout(x, 7, 0.3, 1)[0] != 0, base)
    for other in (run_dropout(x, 8, 0.3, 1)[0] != 0, run_dropout(x, 7, 0.3, 2)[0] != 0):
        agreement = (other == base).mean()  # independent masks agree on p² + (1-p)² of the elements
        assert abs(agreement - (0.3**2 + 0.7**2)) < 0.01, agreement


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
    with pytest.raises(ConfigError, match="runtime.dropout: counter .* needs a C\\+\\+ compiler"):
        cpu_kernels.kernels()


def fit(cfg, resume: bool = False):
    """(the final metrics, the names of the step program's ops)."""
    from bilm.pretrain import ElmoPretraining
    from engine.trainer import Trainer

    trainer = Trainer(ElmoPretraining(cfg), cfg.train, cfg.optim, cfg.runtime)
    metrics = trainer.fit(resume=resume)
    return metrics, {op.name() for op in trainer.programs.step.global_block().ops}


@pytest.mark.slow
def test_a_run_with_counter_dropout_resumes_exactly_and_learns_as_with_paddles(toy_corpus, tmp_path, static_scope):
    steps = {"train.max_steps": 12, "train.save_every": 4, "runtime.dropout": "counter"}
    counter, ops = fit(tiny_config(toy_corpus, tmp_path / "whole", **steps))
    assert "custom_op.counter_dropout" in ops and "pd_op.dropout" not in ops
    with paddle.static.scope_guard(paddle.static.Scope()):
        fit(tiny_config(toy_corpus, tmp_path / "parts", **{**steps, "train.max_steps": 7}))
    with paddle.static.scope_guard(paddle.static.Scope()):
        fit(tiny_config(toy_corpus, tmp_path / "parts", **steps), resume=True)
    whole, parts = (tmp_path / run / "checkpoints" / "step-00000012" for run in ("whole", "parts"))
    for path in whole.glob("lstmp_*"):
        np.testing.assert_allclose(read_tensor(path), read_tensor(parts / path.name), atol=1e-6, err_msg=path.name)
    with paddle.static.scope_guard(paddle.static.Scope()):
        reference, ops = fit(tiny_config(toy_corpus, tmp_path / "paddle", **{**steps, "runtime.dropout": "paddle"}))
    assert "pd_op.dropout" in ops
    # Other masks, the same training: both reach about the same dev perplexity.
    assert abs(np.log(counter["ppl"]) - np.log(reference["ppl"])) < 0.1, (counter, reference)
