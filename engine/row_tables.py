"""Row-wise updates of large tables: only the rows a step read are touched.

A 50k-row embedding or softmax table gets a dense gradient in Paddle 3.3.1's
PIR even with `sparse=True`, so every step zero-fills, clips and updates the
whole table although a batch reads a few thousand rows (the original bilm-tf
trained on sparse rows). A model that reads a table only through
`gather_rows` lets the engine take the gradient of the gathered rows instead
and update just those rows in place.

For Adagrad and SGD this is exactly the dense update: a row with a zero
gradient keeps its value and accumulator. Adam's moments would move untouched
rows, so other optimizers, gradient accumulation and multi-rank all-reduce
(ranks read different rows) keep the dense gradient; the graph is the same
either way and the gradient flows through the gather into the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import paddle
from paddle import _C_ops

from engine.optim import OptimConfig

ROW_WISE_OPTIMIZERS = ("adagrad", "sgd")


@dataclass
class RowGather:
    """A table read through `rows = table[ids]` for distinct `ids`."""

    table: object  # the parameter [V, ...]
    ids: object  # distinct row ids [U] int64
    rows: object  # table[ids] [U, ...]


def gather_rows(table, ids) -> tuple[RowGather, object]:
    """Reads the rows of `table` that `ids` (int64, any shape) name, each once.

    Returns the gather and the position of each id in `rows` (shape of `ids`):
    `gather.rows[position]` is `table[id]`.
    """
    distinct, inverse = _distinct(ids.flatten())
    return RowGather(table, distinct, paddle.gather(table, distinct)), inverse.reshape(ids.shape)


def _distinct(ids):
    """Sorted distinct values of int64 `ids` [N] and each id's index among them.

    By sorting: `paddle.unique` declares float32 outputs for int64 input in
    PIR (Paddle 3.3.1), and ops downstream then pick float kernels.
    """
    order = paddle.argsort(ids)
    ordered = paddle.gather(ids, order)
    first = paddle.concat([paddle.ones([1], "bool"), ordered[1:] != ordered[:-1]])
    group = paddle.cumsum(paddle.cast(first, "int64")) - 1
    return paddle.masked_select(ordered, first), paddle.scatter(paddle.zeros_like(ids), order, group)


def row_wise_applies(optim: OptimConfig, world: int) -> bool:
    """Whether updating only the gathered rows is exact for this run."""
    return optim.name in ROW_WISE_OPTIMIZERS and optim.accumulate_steps == 1 and world == 1


def clip_by_global_norm(grads: list, clip_norm: float) -> list:
    """Scales all gradients by clip / max(‖all‖, clip) (as `ClipGradByGlobalNorm`)."""
    squares = paddle.add_n([paddle.sum(paddle.square(g)) for g in grads])
    norm = paddle.sqrt(squares)
    scale = clip_norm / paddle.maximum(norm, paddle.full([], clip_norm, "float32"))
    return [g * scale for g in grads]


def apply_row_updates(gathers: list[RowGather], grads: list, optim: OptimConfig, lr) -> None:
    """Writes the optimizer step of each gathered row back into its table (in place).

    `lr` is the optimizer's learning-rate value in the program. Adagrad keeps
    its accumulator under Paddle's own name (`<table>_moment_0`), so
    checkpoints are the same whichever way the table was updated.
    """
    for gather, grad in zip(gathers, grads):
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
