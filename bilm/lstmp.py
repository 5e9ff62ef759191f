"""LSTM with a recurrent projection and clipping (the fluid `lstmp` op), from primitives.

Paddle 3 no longer has `dynamic_lstmp`; `paddle.nn.LSTM(proj_size=...)` cannot
clip. The formulas are those of the fluid op as ELMo used it:

    z   = x_t·W_x + b + r_{t-1}·W          gate blocks along 4H: [c̃ | i | f | o]
    c_t = clip(tanh(z_c)·σ(z_i) + c_{t-1}·σ(z_f), ±cell_clip)
    h_t = σ(z_o)·tanh(c_t)
    r_t = clip(h_t·W_rh, ±proj_clip)                   (identity projection activation)

No peepholes, and no forget-gate offset unless the layer has one (models
imported from bilm-tf keep TF's constant 1.0 here instead of folding it into
the bias, so exporting them back is exact). The input projection x·W_x is done
for all steps at once by the caller; only r·W runs inside the recurrence.
"""

from __future__ import annotations

from dataclasses import dataclass

import paddle
import paddle.nn.functional as F

from engine.affine import affine
from engine.weight_products import WeightProducts


@dataclass(frozen=True)
class LSTMPWeights:
    """Parameters of one LSTMP layer (names as in the fluid release)."""

    gate_w: paddle.Tensor  # [in, 4H]  input projection (`fw_layer1_gate_w`, ...)
    weight: paddle.Tensor  # [P, 4H]   recurrent weight (`lstmp_k.w_0`)
    proj: paddle.Tensor  # [H, P]    projection (`lstmp_k.w_1`)
    bias: paddle.Tensor  # [1, 4H]   gate bias (`lstmp_k.b_0`)


@dataclass(frozen=True)
class LSTMP:
    """One layer: its weights, clipping thresholds (0 disables a clip) and forget-gate offset."""

    weights: LSTMPWeights
    cell_clip: float
    proj_clip: float
    forget_bias: float = 0.0  # fluid: none; TF's LSTMCell (bilm-tf models): 1.0
    # Training: the recurrent and projection products go through the engine's
    # `WeightProducts`, which forms their weight gradients in one product each.
    products: WeightProducts | None = None


def lstmp_step(layer: LSTMP, gates_x, r_prev, c_prev):
    """One step. `gates_x` [B,4H] already holds x·W_x + b; returns (r_t [B,P], c_t [B,H])."""
    w, mm = layer.weights, layer.products
    z = mm.addmm(gates_x, r_prev, w.weight) if mm else paddle.addmm(gates_x, r_prev, w.weight)
    # `split` rather than slicing: its gradient is one concat, where every
    # slice's gradient would write a zero-filled copy of the whole input.
    z_c, z_i, z_f, z_o = paddle.split(z, 4, axis=-1)
    if layer.forget_bias:
        z_f = z_f + layer.forget_bias
    c = paddle.tanh(z_c) * F.sigmoid(z_i) + c_prev * F.sigmoid(z_f)
    if layer.cell_clip > 0:
        c = paddle.clip(c, -layer.cell_clip, layer.cell_clip)
    h = F.sigmoid(z_o) * paddle.tanh(c)
    r = mm.matmul(h, w.proj) if mm else paddle.matmul(h, w.proj)
    if layer.proj_clip > 0:
        r = paddle.clip(r, -layer.proj_clip, layer.proj_clip)
    return r, c


def lstmp_sequence(layer: LSTMP, x, r0, c0, mask=None, reset=None):
    """Runs the layer over `x` [B,T,in] from state (r0 [B,P], c0 [B,H]).

    Returns (r [B,T,P], r_last [B,P], c_last [B,H]).
    - `mask` [B,T] (1 = real token, 0 = padding): padding steps leave the state
      unchanged and output zeros, so a row's final state is the state after
      its last real token.
    - `reset` [B,T] (0 = start from a zero state at this step, 1 = carry on):
      lets a stream of sentences start every sentence afresh.

    A static T (training, fixed `num_steps`) is unrolled in Python, which runs
    fastest; a dynamic T (inference on sentences of any length) becomes a
    `while_loop`. Both run `lstmp_step`.
    """
    gates = affine(x, layer.weights.gate_w, layer.weights.bias)
    steps = x.shape[1]
    if steps is not None and steps > 0:
        return _unrolled(layer, gates, r0, c0, mask, reset, steps)
    return _while_loop(layer, gates, r0, c0, mask, reset)


def _step(layer, g, r, c, m, keep):
    if keep is not None:
        r, c = r * keep, c * keep
    r_new, c_new = lstmp_step(layer, g, r, c)
    if m is None:
        return r_new, c_new, r_new
    # m is [B,1]: padding rows keep their state and emit zeros.
    r = m * r_new + (1.0 - m) * r
    c = m * c_new + (1.0 - m) * c
    return r, c, m * r_new


def _unrolled(layer, gates, r, c, mask, reset, steps):
    per_step = paddle.unbind(gates, axis=1)  # one op; its gradient is one stack
    masks = [None] * steps if mask is None else paddle.split(mask, steps, axis=1)
    keeps = [None] * steps if reset is None else paddle.split(reset, steps, axis=1)
    outputs = []
    for t in range(steps):
        r, c, out = _step(layer, per_step[t], r, c, masks[t], keeps[t])
        outputs.append(out)
    return paddle.stack(outputs, axis=1), r, c


def _while_loop(layer, gates, r0, c0, mask, reset):
    if layer.products is not None:
        raise ValueError("recorded weight products need a fixed number of steps (unrolled)")
    def time_major(v):
        return None if v is None else paddle.transpose(v, [1, 0]).unsqueeze(-1)

    gates_t, mask_t, reset_t = paddle.transpose(gates, [1, 0, 2]), time_major(mask), time_major(reset)
    steps = paddle.shape(gates_t)[0]
    outputs = paddle.tensor.create_array("float32")
    i0 = paddle.full([], 0, "int64")

    def cond(i, r, c, outputs):
        return i < steps

    def body(i, r, c, outputs):
        m = None if mask_t is None else mask_t[i]
        keep = None if reset_t is None else reset_t[i]
        r, c, out = _step(layer, gates_t[i], r, c, m, keep)
        paddle.tensor.array_write(out, i, outputs)
        return i + 1, r, c, outputs

    _, r, c, outputs = paddle.static.nn.while_loop(cond, body, [i0, r0, c0, outputs])
    stacked, _ = paddle.tensor.manipulation.tensor_array_to_tensor(outputs, axis=1, use_stack=True)
    return stacked, r, c
