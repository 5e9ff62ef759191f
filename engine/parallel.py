"""Collective data parallelism for static programs.

`fleet.distributed_optimizer(...).minimize` fails in PIR on the CPU wheel of
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
