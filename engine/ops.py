"""Graph-building ops the models share, and the hooks the engine's step uses.

- `affine`: x·W + b, in training as one product (the CPU-efficient form of every dense layer's
  gradient here), in serving as a product and an add; `affine_gelu` with GELU after it.
- `StepDropout`: dropout whose masks are a function of a per-step seed feed,
  so a resumed run draws the masks an uninterrupted one would, alone or after
  an attention softmax; and `layer_norm`.
- Each of these is Paddle's ops, or in a program marked by `use_compiled_kernels`
  our compiled CPU kernels (`engine.cpu_kernels`).
- `WeightProducts` and `gather_rows`: *gradient sources*. A graph that
  reads a weight through many small products, or a large table by row,
  hands these to the engine (`TrainGraph.gradient_sources`); the engine then
  asks autodiff for the gradients of the products' outputs or of the
  gathered rows and forms the parameters' gradients itself: one large product
  per weight, and updates of only the rows a step read (`engine.optim`).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import _C_ops

from engine import cpu_kernels

# -- affine ---------------------------------------------------------------------


def affine(x, weight, bias, training: bool = True):
    """x [..., K] · weight [K, N] + bias [N] → [..., N].

    With G stacked weights [G, K, N] and biases [G, 1, N], x [G, ..., K]
    (one group per weight) gives [G, ..., N] in one batched product.

    `training` (programs that take gradients) adds the bias as a rank-1
    product, ones [..., 1] · b [1, N]: Paddle 3.3.1's CPU gradient of a
    broadcast add reduces slowly, and a product's gradient is a GEMM
    (docs/benchmarks.md measures the forms); with compiled kernels, one
    `bias_add` op. Otherwise (inference and export) the bias is added: the
    form oneDNN and ONNX Runtime fuse and quantize. All compute the same.
    """
    grouped = len(weight.shape) == 3
    # One [G, rows, K] product: MKL and ONNX Runtime run it faster than a
    # broadcast over [G, …], which is a small product per leading index.
    flat = grouped and len(x.shape) > 3
    rows = x.reshape([x.shape[0], -1, x.shape[-1]]) if flat else x
    out = paddle.matmul(rows, weight)
    if training and not grouped and compiled_kernels(paddle.static.default_main_program()):
        return cpu_kernels.kernels().bias_add(out, bias)
    bias = bias if grouped else bias.reshape([1, -1])
    if training:
        ones = paddle.ones_like(rows[..., :1])
        ones.stop_gradient = True
        out = out + paddle.matmul(ones, bias)
    else:
        out = out + bias
    if not flat:
        return out
    dims = [d if d > 0 else paddle.shape(x)[k] for k, d in enumerate(x.shape[:-1])]
    return out.reshape(dims + [weight.shape[-1]])


def affine_gelu(x, weight, bias, training: bool = True):
    """gelu(x · weight + bias) (GELU with erf, as HF's "gelu"); one op after the product with compiled kernels."""
    if training and compiled_kernels(paddle.static.default_main_program()):
        return cpu_kernels.kernels().bias_gelu(paddle.matmul(x, weight), bias)
    return F.gelu(affine(x, weight, bias, training))


# -- dropout --------------------------------------------------------------------
# Paddle's static dropout draws from a generator whose state lives in the
# process, so a resumed run would see other masks than an uninterrupted one.
# The engine feeds `dropout_seed` every step instead, a hash of (run seed,
# step, rank) rather than a counter: with `seed + op index` on consecutive
# integers, op k+1 at step s would draw the mask of op k at step s+1.

SEED_FEED = "dropout_seed"
# Fed seeds stay below this so `seed + op index` never overflows int32.
_MAX_SEED = 2**31 - 2**16


def step_seed(seed: int, step: int, rank: int) -> np.ndarray:
    """The value fed as `dropout_seed` at `step` on `rank` (int32 [1])."""
    value = np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0] % _MAX_SEED
    return np.array([value], dtype=np.int32)


def seed_input():
    """The int32 [1] feed that carries the step's dropout seed."""
    return paddle.static.data(SEED_FEED, [1], "int32")


class StepDropout:
    """Inverted dropout (`upscale_in_train`) with masks seeded by `seed + op index`.

    With `seed=None` or `p == 0` it is the identity, which is how evaluation and
    inference programs are built from the same code. The index counts every
    dropout op of the program being built, whichever `StepDropout` made it (a
    task's own and the one inside `bilm.elmo_encoder`, say), so no two ops
    share a mask; the same build order gives the same indices in every process.
    """

    def __init__(self, p: float, seed=None):
        self.p = float(p)
        self.seed = seed

    def __call__(self, x, p: float | None = None):
        """Drops `x` with the default rate, or with `p`."""
        p = self.p if p is None else float(p)
        if self.seed is None or p == 0.0:
            return x
        index = self._next_index()
        if compiled_kernels(paddle.static.default_main_program()):
            return cpu_kernels.counter_dropout(x, self.seed, p, index)
        # The public `paddle.nn.functional.dropout` cannot take a seed tensor in
        # PIR; the op itself can (checked on Paddle 3.3.1, CPU).
        return _C_ops.dropout(x, self.seed + index, p, False, "upscale_in_train", 0, False)

    def softmax(self, scores, temperature: float, mask, p: float | None = None):
        """Attention probabilities: the dropout of softmax(scores / temperature + mask) over the last axis,
        for scores [B, …, T] and an additive mask [B, 1, 1, T]; one fused op with compiled kernels."""
        p = self.p if p is None else float(p)
        if self.seed is None or p == 0.0 or not compiled_kernels(paddle.static.default_main_program()):
            return self(F.softmax(scores / temperature + mask, axis=-1), p)
        return cpu_kernels.kernels().attention_probs(scores, mask, self.seed, 1.0 / temperature, p,
                                                     self._next_index())[0]

    def _next_index(self) -> int:
        program = paddle.static.default_main_program()
        index = _dropout_ops[program] = _dropout_ops.get(program, 0) + 1
        return index


# Per program under construction: how many seeded dropout ops it has so far.
_dropout_ops: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Programs built with `engine.cpu_kernels`' ops.
_compiled_programs: weakref.WeakSet = weakref.WeakSet()


def use_compiled_kernels(program) -> None:
    """Makes the dropout, attention softmax, `layer_norm`, training's bias adds and GELU (`affine`,
    `affine_gelu`) and the AdamW update built into `program` from now on our compiled CPU kernels
    (`runtime.kernels: compiled`) instead of Paddle's ops: the same functions, other dropout masks,
    float sums in another order."""
    cpu_kernels.kernels()  # built now: a missing compiler is one error before the graph, not a trace inside it
    _compiled_programs.add(program)


def compiled_kernels(program) -> bool:
    """Whether `program` is built with the compiled kernels (`use_compiled_kernels`)."""
    return program in _compiled_programs


def layer_norm(x, weight, bias, epsilon: float):
    """Layer norm over the last axis of `x`, with `weight` and `bias` [H]."""
    if compiled_kernels(paddle.static.default_main_program()):
        return cpu_kernels.kernels().fused_layer_norm(x, weight, bias, float(epsilon))[0]
    return F.layer_norm(x, x.shape[-1:], weight, bias, epsilon=epsilon)


# -- gradient sources -------------------------------------------------------------


class GradientSource(Protocol):
    """Parameters whose gradients the engine forms from the gradients of `values()`.

    `parameters()` are kept out of autodiff's own parameter gradients;
    `gradients(value_grads)` returns (target, gradient) pairs, where a target
    is a parameter (a dense gradient) or a `RowGather` (the gradient of its rows).
    """

    def parameters(self) -> list: ...

    def values(self) -> list: ...

    def gradients(self, value_grads: list) -> list[tuple]: ...


@dataclass
class _Uses:
    weight: object  # the parameter
    constant: object  # the same values taking no gradient, used by every product
    inputs: list = field(default_factory=list)  # x of each product
    outputs: list = field(default_factory=list)  # x·W of each product


class WeightProducts:
    """Records x·W products so that W's gradient is one product (a `GradientSource`).

    An unrolled recurrence multiplies the same weight at every step, and
    autodiff would build one small weight-gradient product per step and sum
    them: 20 × [256, 32]·[32, 4096] for an ELMo layer, which MKL runs at a
    fraction of its large-matrix rate. Here each step multiplies a detached
    view of the weight, and the gradient is Σ xₜᵀ·dyₜ = [x₁; …; x_T]ᵀ·[dy₁; …; dy_T]
    from the gradients of the steps' outputs, which backward computes anyway:
    the same values up to summation order.
    """

    def __init__(self):
        self._uses: dict[str, _Uses] = {}

    def matmul(self, x, weight):
        """x [N, K] · weight [K, M]."""
        out = paddle.matmul(x, self._record(weight).constant)
        return self._add(weight, x, out)

    def addmm(self, base, x, weight):
        """base [N, M] + x [N, K] · weight [K, M] (the weight's gradient is that of x·W alone)."""
        out = paddle.addmm(base, x, self._record(weight).constant)
        return self._add(weight, x, out)

    def parameters(self) -> list:
        return [u.weight for u in self._uses.values()]

    def values(self) -> list:
        return [o for u in self._uses.values() for o in u.outputs]

    def gradients(self, value_grads: list) -> list[tuple]:
        pairs, start = [], 0
        for use in self._uses.values():
            grads = value_grads[start:start + len(use.outputs)]
            start += len(use.outputs)
            if any(g is None for g in grads):
                raise RuntimeError(f"a product of {use.weight.name} does not reach the objective")
            pairs.append((use.weight, paddle.matmul(_rows(use.inputs), _rows(grads), transpose_x=True)))
        return pairs

    def _record(self, weight) -> _Uses:
        if weight.name not in self._uses:
            # `detach` shares the weight's memory: no copy per step.
            self._uses[weight.name] = _Uses(weight, weight.detach())
        return self._uses[weight.name]

    def _add(self, weight, x, out):
        use = self._uses[weight.name]
        use.inputs.append(x)
        use.outputs.append(out)
        return out


def _rows(parts: list):
    return paddle.concat(parts) if len(parts) > 1 else parts[0]


@dataclass
class RowGather:
    """A table read through `rows = table[ids]` for distinct `ids` (a `GradientSource`).

    A 50k-row table gets a dense gradient in Paddle 3.3.1's PIR even with
    `sparse=True`, so every step would zero-fill, clip and update the whole
    table although a batch reads a few thousand rows. A model that reads a
    table only through `gather_rows` lets the engine take the gradient of the
    rows instead; `engine.optim` updates just those rows where that is exact
    and scatters them into a dense gradient where it is not.
    """

    table: object  # the parameter [V, ...]
    ids: object  # distinct row ids [U] int64
    rows: object  # table[ids] [U, ...]

    def parameters(self) -> list:
        return [self.table]

    def values(self) -> list:
        return [self.rows]

    def gradients(self, value_grads: list) -> list[tuple]:
        if value_grads[0] is None:
            raise RuntimeError(f"the rows gathered from {self.table.name} do not reach the objective")
        return [(self, value_grads[0])]


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
