"""One direction of the biLM: embedding → stacked LSTMP layers with residuals."""

from __future__ import annotations

from dataclasses import dataclass

import paddle

from bilm.config import BiLMConfig
from bilm.lstmp import LSTMP, LSTMPWeights, lstmp_sequence


@dataclass
class DirectionOutput:
    """What one direction's LSTMP stack produces."""

    layers: list  # per layer [B,T,P]: LSTMP output plus residual, before output dropout
    top: object  # [B,T,P]: what the softmax sees (last layer after dropout)
    last_hidden: list  # per layer [B,P]: raw LSTMP output r at the last step
    last_cell: list  # per layer [B,H]


def run_direction(x, layers: list[LSTMPWeights], cfg: BiLMConfig, init_hidden, init_cell,
                  dropout, mask=None, reset=None, products=None) -> DirectionOutput:
    """Runs one direction's LSTMP stack over embedded tokens `x` [B,T,E].

    `init_hidden`/`init_cell` are per-layer lists of [B,P]/[B,H] start states;
    `mask` and `reset` are passed to every layer (see `lstmp_sequence`).
    As in the fluid release, each layer's input a = drop(x) is dropped once
    more before the LSTMP, the residual (from the second layer on) adds a, and
    the layer output is dropped again before it feeds the next layer or the
    softmax. The carried state is the raw projection r before the residual and
    the cell c itself (the fluid release carried a dropped-out copy of c).
    `products` (an `engine.weight_products.WeightProducts`, training only)
    records the recurrent products for one-product weight gradients.
    """
    inp = x
    outputs, last_r, last_c = [], [], []
    for i, weights in enumerate(layers):
        a = dropout(inp)
        layer = LSTMP(weights, cfg.cell_clip, cfg.proj_clip, cfg.forget_bias, products)
        r, r_last, c_last = lstmp_sequence(layer, dropout(a), init_hidden[i], init_cell[i], mask, reset)
        out = r + a if cfg.use_skip_connections and i > 0 else r
        if mask is not None and cfg.use_skip_connections and i > 0:
            out = out * mask.unsqueeze(-1)
        outputs.append(out)
        last_r.append(r_last)
        last_c.append(c_last)
        inp = dropout(out)
    return DirectionOutput(outputs, inp, last_r, last_c)


def zero_state(batch_like, size: int):
    """A [B,size] float32 zero state whose batch size follows `batch_like` [B,...]."""
    return paddle.zeros([paddle.shape(batch_like)[0], size], "float32")
