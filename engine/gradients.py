"""Gradient transforms applied in-graph between `backward` and `apply_gradients`.

Data parallelism: `fleet.distributed_optimizer(...).minimize` fails in PIR on the CPU wheel of
Paddle 3.3.1; an all-reduce of each gradient between `optimizer.backward` and
`apply_gradients` works with gloo (CPU) and NCCL (GPU) alike, so this one
code path serves both.
"""

from __future__ import annotations

import paddle


def allreduce_gradients(params_grads, world: int):
    """Sums each gradient over the ranks and divides by their number (in-graph)."""
    averaged = []
    for param, grad in params_grads:
        paddle.distributed.all_reduce(grad)
        averaged.append((param, grad / float(world)))
    return averaged


def zero_if_nonfinite(params_grads, objective=None):
    """Replaces every gradient by zeros when the objective (if given) or any gradient is NaN/inf.

    With Adagrad and SGD a zero gradient leaves parameters and accumulators
    unchanged; Adam's momentum still moves the parameters a little.
    """
    finite = paddle.full([], True, "bool") if objective is None else paddle.isfinite(objective).all()
    for _, grad in params_grads:
        finite = paddle.logical_and(finite, paddle.isfinite(grad.sum()))
    return [(param, paddle.where(finite, grad, paddle.zeros_like(grad))) for param, grad in params_grads]
