"""Optimizers from the `optim:` config section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import paddle


@dataclass
class OptimConfig:
    """Optimizer and gradient clipping (defaults: the fluid ELMo's Adagrad)."""

    name: Literal["adagrad", "sgd", "adam", "rmsprop"] = "adagrad"
    learning_rate: float = 0.2
    initial_accumulator_value: float = 1.0  # adagrad
    epsilon: float = 0.0  # adagrad/adam/rmsprop denominator term
    grad_clip: float = 10.0  # global-norm clipping over all parameters; 0 disables


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
        return paddle.optimizer.Adam(lr, epsilon=cfg.epsilon or 1e-8, grad_clip=clip)
    return paddle.optimizer.RMSProp(lr, epsilon=cfg.epsilon or 1e-6, grad_clip=clip)
