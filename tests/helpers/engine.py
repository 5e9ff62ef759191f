"""A job of the engine's own for its optimization tests: linear regression on reproducible data."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import paddle

from engine.config import load_config
from engine.job import InlineStream, Job, TrainGraph
from engine.optim import OptimConfig
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

    def export(self, exe, output_dir: Path, settings=None):
        return {}


def run(tmp_path, run_name, rows, steps, job: dict | None = None, log_every: int = 100, visualdl: bool = False,
        **optim) -> dict[str, np.ndarray]:
    """Trains RegressionJob for `steps` steps of `rows` rows in a scope of its own (`optim`: OptimConfig keys);
    returns the parameters."""
    train = TrainConfig(output_dir=str(tmp_path / run_name), batch_size=rows, max_steps=steps, log_every=log_every,
                        save_every=0)
    optim_cfg = load_config(OptimConfig, None, [f"{k}={v}" for k, v in optim.items()])
    with paddle.static.scope_guard(paddle.static.Scope()):
        Trainer(RegressionJob(rows, **(job or {})), train, optim_cfg, RuntimeConfig(visualdl=visualdl)).fit()
        scope = paddle.static.global_scope()
        return {n: np.array(scope.find_var(n).get_tensor()) for n in ("reg.weight", "reg.bias",
                                                                      "reg.LayerNorm.weight")}
