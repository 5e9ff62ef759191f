"""Everything about applying gradients: optimizers, schedules, clipping, frozen and row-wise parameters.

The step (`engine.step`) hands this module (target, gradient) pairs, where a
target is a parameter or an `engine.ops.RowGather` (the rows of a table a
step read). For Adagrad and SGD, updating just those rows is exactly the
dense update: a row with a zero gradient keeps its value and accumulator.
Adam's moments would move untouched rows, and accumulation or several ranks
add up gradients of different rows, so there the rows are scattered into a
dense gradient first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import paddle
from paddle import _C_ops

from engine.cpu_kernels import kernels
from engine.errors import ConfigError
from engine.ops import RowGather, compiled_kernels

ROW_WISE_OPTIMIZERS = ("adagrad", "sgd")


@dataclass
class OptimConfig:
    """The `optim:` section: optimizer, schedule, clipping and what stays frozen."""

    name: Literal["adagrad", "sgd", "adam", "adamw", "rmsprop"] = "adam"  # the optimizer
    learning_rate: float = 1e-3  # the peak rate with a schedule
    beta1: float = 0.9  # Adam/AdamW's first-moment decay
    beta2: float = 0.999  # Adam/AdamW's second-moment decay
    epsilon: float = 1e-8  # denominator term of Adagrad/Adam/AdamW/RMSProp
    weight_decay: float = 0.0  # AdamW's decoupled decay; never on biases or LayerNorm weights
    initial_accumulator_value: float = 0.0  # Adagrad's starting accumulator
    grad_clip: float = 0.0  # global-norm clipping over all parameters; 0 disables
    # constant, or linear: warm up over warmup_ratio of the steps, then decay linearly to 0
    schedule: Literal["constant", "linear"] = "constant"
    warmup_ratio: float = 0.0  # share of the steps spent warming up (linear schedule)
    accumulate_steps: int = 1  # micro-batches whose gradients make one update
    freeze: list[str] = field(default_factory=list)  # parameter-name prefixes that do not train

    def __post_init__(self):
        if self.accumulate_steps < 1:
            raise ValueError(f"accumulate_steps must be >= 1, got {self.accumulate_steps}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


def learning_rate(cfg: OptimConfig, total_steps: int, start_step: int = 0):
    """A float, or a scheduler positioned at `start_step` (the engine steps it after each update)."""
    if cfg.schedule == "constant":
        return cfg.learning_rate
    warmup = int(cfg.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = paddle.optimizer.lr.LambdaDecay(cfg.learning_rate, factor)
    for _ in range(start_step):
        scheduler.step()
    return scheduler


def no_decay(name: str) -> bool:
    """Biases and LayerNorm weights are not weight-decayed (BERT/LUKE recipe)."""
    return name.endswith(".bias") or "LayerNorm" in name or "layer_norm" in name


def build_optimizer(cfg: OptimConfig, lr) -> paddle.optimizer.Optimizer:
    """The configured optimizer with `lr` (from `learning_rate`); clipping is `clip_by_global_norm`'s."""
    if cfg.name == "adagrad":
        optimizer = paddle.optimizer.Adagrad(lr, epsilon=cfg.epsilon,
                                             initial_accumulator_value=cfg.initial_accumulator_value)
    elif cfg.name == "sgd":
        optimizer = paddle.optimizer.SGD(lr)
    elif cfg.name == "adam":
        optimizer = paddle.optimizer.Adam(lr, beta1=cfg.beta1, beta2=cfg.beta2, epsilon=cfg.epsilon)
    elif cfg.name == "adamw":
        compiled = compiled_kernels(paddle.static.default_main_program())
        optimizer = (CompiledAdamW if compiled else paddle.optimizer.AdamW)(
            lr, beta1=cfg.beta1, beta2=cfg.beta2, epsilon=cfg.epsilon, weight_decay=cfg.weight_decay,
            apply_decay_param_fun=lambda name: not no_decay(name))
    else:
        optimizer = paddle.optimizer.RMSProp(lr, epsilon=cfg.epsilon)
    # With a scheduler, Paddle 3.3.1 derives the learning-rate variable's dtype
    # in `backward`; a program that only applies gradients needs it set.
    optimizer._dtype = paddle.float32
    return optimizer


class CompiledAdamW(paddle.optimizer.AdamW):
    """Paddle's AdamW whose update is `engine.cpu_kernels`' `adamw_` (programs built with compiled kernels).

    The accumulators are Paddle's own, under its names, so checkpoints load
    either way. Reads the optimizer's private accumulator API of Paddle 3.3.1
    (the version pinned in pyproject.toml).
    """

    def _append_optimize_op(self, block, param_and_grad):
        param, grad = param_and_grad
        decay = self._apply_decay_param_fun is None or self._apply_decay_param_fun(param.name)
        state = [self._get_accumulator_master(name, param) for name in (
            self._moment1_acc_str, self._moment2_acc_str, self._beta1_pow_acc_str, self._beta2_pow_acc_str)]
        kernels().adamw_(param, grad, self._create_param_lr(param_and_grad), *state, float(self._beta1),
                         float(self._beta2), float(self._epsilon), float(self._weight_decay) if decay else 0.0)


def freeze_parameters(program, prefixes: list[str], unbuilt: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """Keeps parameters whose names start with a prefix out of training.

    Returns (the frozen names, the prefixes that match only `unbuilt`
    parameters: ones this configuration does not build). A prefix matching
    nothing at all is an error.
    """
    frozen, absent = [], []
    for prefix in prefixes:
        matched = [p for p in program.global_block().all_parameters() if p.name.startswith(prefix)]
        if not matched and any(name.startswith(prefix) for name in unbuilt):
            absent.append(prefix)
            continue
        if not matched:
            raise ConfigError(f"optim.freeze: no parameter name starts with '{prefix}'")
        for param in matched:
            param.stop_gradient = True
            frozen.append(param.name)
    return frozen, absent


# -- gradient transforms ----------------------------------------------------------


def row_wise_applies(optim: OptimConfig, world: int) -> bool:
    """Whether updating only the rows a step read is exact for this run."""
    return optim.name in ROW_WISE_OPTIMIZERS and optim.accumulate_steps == 1 and world == 1


def densify(pairs: list[tuple]) -> list[tuple]:
    """Row gradients scattered into dense gradients of their tables (the ids are distinct)."""
    return [(t.table, paddle.scatter(paddle.zeros_like(t.table), t.ids, g)) if isinstance(t, RowGather) else (t, g)
            for t, g in pairs]


def clip_by_global_norm(pairs: list[tuple], clip_norm: float) -> list[tuple]:
    """Scales every gradient by clip / max(‖all‖, clip): `ClipGradByGlobalNorm`'s ops, rows included."""
    squares = paddle.stack([_C_ops.squared_l2_norm(g) for _, g in pairs]).sum()
    limit = paddle.full([1], clip_norm, "float32")
    scale = paddle.divide(limit, paddle.maximum(paddle.sqrt(squares), limit))
    return [(target, paddle.multiply(g, scale)) for target, g in pairs]


def apply_gradients(pairs: list[tuple], optim: OptimConfig, lr) -> None:
    """Applies the optimizer step: dense pairs through Paddle's optimizer, rows in place."""
    optimizer = build_optimizer(optim, lr)
    optimizer.apply_gradients([(t, g) for t, g in pairs if not isinstance(t, RowGather)])
    rows = [(t, g) for t, g in pairs if isinstance(t, RowGather)]
    if rows:
        _apply_row_updates(rows, optim, optimizer._global_learning_rate())


def _apply_row_updates(pairs: list[tuple[RowGather, object]], optim: OptimConfig, lr) -> None:
    """Writes the Adagrad/SGD step of each gathered row back into its table.

    Adagrad keeps its accumulator under Paddle's own name (`<table>_moment_0`),
    so checkpoints are the same whichever way the table was updated.
    """
    for gather, grad in pairs:
        step = lr * grad
        if optim.name == "adagrad":
            moment = _accumulator(gather.table, "moment_0", optim.initial_accumulator_value)
            moment_rows = paddle.gather(moment, gather.ids) + grad * grad
            _C_ops.scatter_(moment, gather.ids, moment_rows, True)
            step = step / (paddle.sqrt(moment_rows) + optim.epsilon)
        _C_ops.scatter_(gather.table, gather.ids, gather.rows - step, True)


def _accumulator(table, suffix: str, initial: float):
    attr = paddle.ParamAttr(name=f"{table.name}_{suffix}", trainable=False,
                            initializer=paddle.nn.initializer.Constant(initial))
    return paddle.static.create_parameter(list(table.shape), "float32", attr=attr)
