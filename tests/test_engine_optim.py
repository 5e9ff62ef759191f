"""The engine's optimization on a job of its own: accumulation, schedules, decay, freezing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import paddle
import pytest

from engine.config import load_config
from engine.errors import ConfigError
from engine.job import InlineStream, Job, TrainGraph
from engine.optim import OptimConfig, learning_rate, no_decay
from engine.runtime import RuntimeConfig
from engine.trainer import TrainConfig, Trainer


@dataclass
class RegressionBatch:
    index: int
    arrays: dict
    state: dict = field(default_factory=dict)

    @property
    def num_tokens(self) -> int:
        return len(self.arrays["x"])


class RegressionJob(Job):
    """y = x·w + b on reproducible data: sample i is a function of i alone."""

    def __init__(self, rows: int, unused: bool = False, unbuilt: tuple[str, ...] = ()):
        self.rows = rows
        self.unused = unused  # also create a parameter the loss never reads
        self.unbuilt = unbuilt  # names of parameters "other configurations" build

    def build_train_graph(self) -> TrainGraph:
        x = paddle.static.data("x", [-1, 3], "float32")
        y = paddle.static.data("y", [-1, 1], "float32")
        w = paddle.static.create_parameter([3, 1], "float32", attr=paddle.ParamAttr(name="reg.weight"))
        b = paddle.static.create_parameter([1], "float32", attr=paddle.ParamAttr(name="reg.bias"))
        norm = paddle.static.create_parameter([1], "float32", attr=paddle.ParamAttr(
            name="reg.LayerNorm.weight", initializer=paddle.nn.initializer.Constant(1.0)))
        if self.unused:
            paddle.static.create_parameter([2], "float32", attr=paddle.ParamAttr(name="reg.unused"))
        loss = (((paddle.matmul(x, w) + b) * norm - y) ** 2).mean()
        return TrainGraph(feeds={"x": x, "y": y}, loss=loss, unbuilt_parameters=self.unbuilt)

    def train_batches(self, reader_state):
        return InlineStream(self._batches(reader_state["samples"] if reader_state else 0))

    def _batches(self, i: int):
        while True:
            xs = np.stack([np.random.default_rng(i + k).normal(size=3) for k in range(self.rows)]).astype(np.float32)
            ys = (xs @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)
            i += self.rows
            yield RegressionBatch(i, {"x": xs, "y": ys}, {"samples": i})

    def evaluate(self, exe):
        return {"done": 1.0}

    def write_model_files(self, directory: Path) -> None:
        pass

    def export(self, exe, output_dir: Path, onnx: bool = False):
        return {}


def run(tmp_path, run_name, rows, steps, job: dict | None = None, log_every: int = 100, visualdl: bool = False,
        **optim) -> dict[str, np.ndarray]:
    train = TrainConfig(output_dir=str(tmp_path / run_name), batch_size=rows, max_steps=steps, log_every=log_every,
                        save_every=0)
    optim_cfg = load_config(OptimConfig, None, [f"{k}={v}" for k, v in optim.items()])
    with paddle.static.scope_guard(paddle.static.Scope()):
        Trainer(RegressionJob(rows, **(job or {})), train, optim_cfg, RuntimeConfig(visualdl=visualdl)).fit()
        scope = paddle.static.global_scope()
        return {n: np.array(scope.find_var(n).get_tensor()) for n in ("reg.weight", "reg.bias",
                                                                      "reg.LayerNorm.weight")}


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_accumulating_k_micro_batches_equals_one_k_times_larger_batch(tmp_path, name):
    common = {"name": name, "learning_rate": 0.05, "weight_decay": 0.01, "schedule": "linear",
              "warmup_ratio": 0.2}
    big = run(tmp_path, "big", rows=8, steps=6, **common)
    accumulated = run(tmp_path, "acc", rows=4, steps=6, accumulate_steps=2, **common)
    for key in big:
        np.testing.assert_allclose(accumulated[key], big[key], atol=1e-6, err_msg=key)
    single = run(tmp_path, "single", rows=4, steps=6, **common)
    assert np.abs(single["reg.weight"] - big["reg.weight"]).max() > 1e-4  # the test can tell them apart


def test_weight_decay_spares_biases_and_layer_norms(tmp_path):
    from engine.optim import build_optimizer

    assert no_decay("encoder.layer.0.output.LayerNorm.weight") and no_decay("pooler.dense.bias")
    assert not no_decay("encoder.layer.0.output.dense.weight")
    decides = build_optimizer(OptimConfig(name="adamw", weight_decay=0.1), 0.1)._apply_decay_param_fun
    assert decides("reg.weight") and not decides("reg.bias") and not decides("reg.LayerNorm.weight")
    plain = run(tmp_path, "plain", rows=4, steps=3, name="adamw", learning_rate=0.1, weight_decay=0.0)
    decayed = run(tmp_path, "decayed", rows=4, steps=3, name="adamw", learning_rate=0.1, weight_decay=0.5)
    assert np.abs(plain["reg.weight"] - decayed["reg.weight"]).max() > 1e-4


def test_linear_schedule_warms_up_decays_and_resumes_in_place():
    cfg = OptimConfig(learning_rate=1.0, schedule="linear", warmup_ratio=0.25)
    scheduler = learning_rate(cfg, total_steps=8)
    rates = []
    for _ in range(8):
        rates.append(scheduler.get_lr())
        scheduler.step()
    assert rates == pytest.approx([0.5, 1.0, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6])
    assert learning_rate(cfg, total_steps=8, start_step=5).get_lr() == pytest.approx(rates[5])
    assert learning_rate(OptimConfig(learning_rate=0.3), total_steps=8) == 0.3


def test_frozen_parameters_do_not_train(tmp_path):
    one = run(tmp_path, "one", rows=4, steps=1, name="sgd", learning_rate=0.1, freeze=["reg.weight"])
    three = run(tmp_path, "three", rows=4, steps=3, name="sgd", learning_rate=0.1, freeze=["reg.weight"])
    np.testing.assert_array_equal(one["reg.weight"], three["reg.weight"])
    assert np.abs(one["reg.bias"] - three["reg.bias"]).max() > 1e-4  # the rest trains
    with pytest.raises(ConfigError, match="optim.freeze: no parameter name starts with 'nope'"):
        run(tmp_path, "bad", rows=4, steps=1, freeze=["nope"])


def test_freezing_a_parameter_this_configuration_does_not_build_is_a_note(tmp_path, capsys):
    run(tmp_path, "note", rows=4, steps=1, job={"unbuilt": ("reg.table.weight",)}, freeze=["reg.table"])
    assert "note: optim.freeze: 'reg.table' is not built in this configuration" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="no parameter name starts with 'reg.tabel'"):  # a typo stays an error
        run(tmp_path, "typo", rows=4, steps=1, job={"unbuilt": ("reg.table.weight",)}, freeze=["reg.tabel"])


def test_a_trainable_parameter_that_never_reaches_the_loss_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"trainable parameter\(s\) reg.unused do not reach the loss"):
        run(tmp_path, "unused", rows=4, steps=1, job={"unused": True})
    run(tmp_path, "frozen", rows=4, steps=1, job={"unused": True}, freeze=["reg.unused"])  # frozen: fine
