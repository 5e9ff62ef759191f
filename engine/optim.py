"""Optimizers and learning-rate schedules from the `optim:` config section."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import paddle

from engine.errors import ConfigError


@dataclass
class OptimConfig:
    """Optimizer, schedule, clipping and what stays frozen; each job's config sets its own recipe."""

    name: Literal["adagrad", "sgd", "adam", "adamw", "rmsprop"] = "adam"
    learning_rate: float = 1e-3
    beta1: float = 0.9  # adam/adamw
    beta2: float = 0.999  # adam/adamw
    epsilon: float = 1e-8  # denominator term of adagrad/adam/adamw/rmsprop
    weight_decay: float = 0.0  # adamw (decoupled); never on biases or LayerNorm weights
    initial_accumulator_value: float = 0.0  # adagrad
    grad_clip: float = 0.0  # global-norm clipping over all parameters; 0 disables
    # constant, or linear: warm up over warmup_ratio of the steps, then decay linearly to 0.
    schedule: Literal["constant", "linear"] = "constant"
    warmup_ratio: float = 0.0
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
    """The configured optimizer with `lr` (from `learning_rate`) and global-norm clipping."""
    clip = paddle.nn.ClipGradByGlobalNorm(cfg.grad_clip) if cfg.grad_clip > 0 else None
    if cfg.name == "adagrad":
        optimizer = paddle.optimizer.Adagrad(lr, epsilon=cfg.epsilon, grad_clip=clip,
                                             initial_accumulator_value=cfg.initial_accumulator_value)
    elif cfg.name == "sgd":
        optimizer = paddle.optimizer.SGD(lr, grad_clip=clip)
    elif cfg.name == "adam":
        optimizer = paddle.optimizer.Adam(lr, beta1=cfg.beta1, beta2=cfg.beta2, epsilon=cfg.epsilon, grad_clip=clip)
    elif cfg.name == "adamw":
        optimizer = paddle.optimizer.AdamW(lr, beta1=cfg.beta1, beta2=cfg.beta2, epsilon=cfg.epsilon,
                                           weight_decay=cfg.weight_decay, grad_clip=clip,
                                           apply_decay_param_fun=lambda name: not no_decay(name))
    else:
        optimizer = paddle.optimizer.RMSProp(lr, epsilon=cfg.epsilon, grad_clip=clip)
    # With a scheduler, Paddle 3.3.1 derives the learning-rate variable's dtype
    # in `backward`; a program that only applies gradients needs it set.
    optimizer._dtype = paddle.float32
    return optimizer


def freeze_parameters(program, prefixes: list[str]) -> list[str]:
    """Keeps parameters whose names start with a prefix out of training; returns their names."""
    frozen = []
    for prefix in prefixes:
        matched = [p for p in program.global_block().all_parameters() if p.name.startswith(prefix)]
        if not matched:
            raise ConfigError(f"optim.freeze: no parameter name starts with '{prefix}'")
        for param in matched:
            param.stop_gradient = True
            frozen.append(param.name)
    return frozen
