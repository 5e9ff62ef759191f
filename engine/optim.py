"""Optimizers from the `optim:` config section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import paddle


@dataclass
class OptimConfig:
    """Optimizer and gradient clipping; each job's config sets its own recipe."""

    name: Literal["adagrad", "sgd", "adam", "rmsprop"] = "adam"
    learning_rate: float = 1e-3
    initial_accumulator_value: float = 0.0  # adagrad
    epsilon: float = 1e-8  # denominator term of adagrad/adam/rmsprop
    grad_clip: float = 0.0  # global-norm clipping over all parameters; 0 disables


def build_optimizer(cfg: OptimConfig) -> paddle.optimizer.Optimizer:
    """The configured optimizer, with global-norm clipping attached."""
    clip = paddle.nn.ClipGradByGlobalNorm(cfg.grad_clip) if cfg.grad_clip > 0 else None
    lr = cfg.learning_rate
    if cfg.name == "adagrad":
        return paddle.optimizer.Adagrad(lr, epsilon=cfg.epsilon, grad_clip=clip,
                                        initial_accumulator_value=cfg.initial_accumulator_value)
    if cfg.name == "sgd":
        return paddle.optimizer.SGD(lr, grad_clip=clip)
    if cfg.name == "adam":
        return paddle.optimizer.Adam(lr, epsilon=cfg.epsilon, grad_clip=clip)
    return paddle.optimizer.RMSProp(lr, epsilon=cfg.epsilon, grad_clip=clip)
