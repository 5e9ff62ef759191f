"""The character encoder of character-level ELMo: characters → token vectors.

bilm-tf's token encoder, as static-graph layers: a character embedding (a
fixed zero row first, for padded token positions), a bank of valid
convolutions each max-pooled over the token's positions and activated,
highway layers, and a projection to the LSTM input size when the filter bank
is wider. Variable names are bilm-tf's with `/` written as `_`
(`CNN/W_cnn_0` → `CNN_W_cnn_0`), shapes exactly bilm-tf's, so importing and
exporting is a renaming.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import paddle
import paddle.nn.functional as F
from paddle.nn.initializer import Constant, Normal, Uniform

from bilm.config import BiLMConfig
from reader.chars import NUM_CHARS

CHAR_EMBED = "char_embed"


def char_tf_names(cfg: BiLMConfig) -> dict[str, str]:
    """Our variable name → bilm-tf dataset name, in creation order."""
    c = cfg.char_cnn
    tf = [CHAR_EMBED]
    for i in range(len(c.filters)):
        tf += [f"CNN/W_cnn_{i}", f"CNN/b_cnn_{i}"]
    for k in range(c.n_highway):
        tf += [f"CNN_high_{k}/{p}_{g}" for g in ("carry", "transform") for p in ("W", "b")]
    if _projected(cfg):
        tf += ["CNN_proj/W_proj", "CNN_proj/b_proj"]
    return {name.replace("/", "_"): name for name in tf}


def char_variable_shapes(cfg: BiLMConfig) -> dict[str, tuple[int, ...]]:
    """Our character-encoder variable names → shapes (bilm-tf's shapes)."""
    c, n = cfg.char_cnn, cfg.char_cnn.num_features
    shapes: dict[str, tuple[int, ...]] = {CHAR_EMBED: (NUM_CHARS, c.embed_size)}
    for i, (width, count) in enumerate(c.filters):
        shapes[f"CNN_W_cnn_{i}"] = (1, width, c.embed_size, count)
        shapes[f"CNN_b_cnn_{i}"] = (count,)
    for k in range(c.n_highway):
        for gate in ("carry", "transform"):
            shapes[f"CNN_high_{k}_W_{gate}"] = (n, n)
            shapes[f"CNN_high_{k}_b_{gate}"] = (n,)
    if _projected(cfg):
        shapes["CNN_proj_W_proj"] = (n, cfg.embed_size)
        shapes["CNN_proj_b_proj"] = (cfg.embed_size,)
    assert list(shapes) == list(char_tf_names(cfg))
    return shapes


def _projected(cfg: BiLMConfig) -> bool:
    return cfg.char_cnn.num_features != cfg.embed_size


def initializer(cfg: BiLMConfig, name: str):
    """bilm-tf's training initialisation of each character-encoder variable."""
    c, n = cfg.char_cnn, cfg.char_cnn.num_features
    if name == CHAR_EMBED:
        return Uniform(-1.0, 1.0)
    if name.startswith("CNN_W_cnn_"):
        width = c.filters[int(name.rsplit("_", 1)[1])][0]
        if c.activation == "relu":
            return Uniform(-0.05, 0.05)
        return Normal(0.0, math.sqrt(1.0 / (width * c.embed_size)))
    if name.endswith("_b_carry"):
        return Constant(-2.0)  # start by carrying the input through
    if "_b_" in name:
        return Constant(0.0)
    return Normal(0.0, math.sqrt(1.0 / n))


@dataclass
class CharCNNParams:
    """Handles to the character-encoder parameters, by our variable name."""

    variables: dict

    def __getitem__(self, name: str):
        return self.variables[name]


def char_token_embedding(char_ids, params: CharCNNParams, cfg: BiLMConfig):
    """Token vectors [..., E] for character ids [..., max_characters] (int64, see `reader.chars`).

    Padded token positions (all ids 0) read the fixed zero row; their vectors
    are not zero, so callers mask them.
    """
    c = cfg.char_cnn
    table = paddle.concat([paddle.zeros([1, c.embed_size], "float32"), params[CHAR_EMBED]], axis=0)
    chars = F.embedding(char_ids, table)  # [..., C, D]
    flat = len(chars.shape) == 3  # [N, C, D]: treat as one row of N tokens
    if flat:
        chars = chars.unsqueeze(0)
    # bilm-tf's conv2d over [B, T, C, D] with (1, w, D, n) kernels, in NCHW:
    # no reshape of the batch (paddle.inference mis-sizes tensors reshaped
    # back from a flattened batch) and no NHWC (its layout pass then reduces
    # over the wrong axis).
    chars = paddle.transpose(chars, [0, 3, 1, 2])  # [B, D, T, C]
    pooled, biases = [], []
    for i, (width, _) in enumerate(c.filters):
        kernel = paddle.transpose(params[f"CNN_W_cnn_{i}"], [3, 2, 0, 1])  # [n, D, 1, w]: no flip
        conv = F.conv2d(chars, kernel)  # [B, n, T, C - w + 1]
        # Max over positions as a pooling op: Paddle's reduce-max gradient is
        # about 20x slower on CPU and made the filter bank dominate training.
        pooled.append(F.max_pool2d(conv, kernel_size=[1, c.max_characters - width + 1]))
        # The bias is constant over positions: adding it after the max is exact and cheaper.
        biases.append(params[f"CNN_b_cnn_{i}"])
    h = paddle.transpose(paddle.concat(pooled, axis=1).squeeze(3), [0, 2, 1])  # [B, T, features]
    h = paddle.concat(biases) + h
    h = F.relu(h) if c.activation == "relu" else paddle.tanh(h)
    for k in range(c.n_highway):
        gate = F.sigmoid(_linear(h, params, f"CNN_high_{k}", "carry"))
        transformed = F.relu(_linear(h, params, f"CNN_high_{k}", "transform"))
        h = gate * transformed + (1.0 - gate) * h
    if _projected(cfg):
        h = _linear(h, params, "CNN_proj", "proj")
    return h.squeeze(0) if flat else h


def _linear(x, params: CharCNNParams, scope: str, what: str):
    return paddle.matmul(x, params[f"{scope}_W_{what}"]) + params[f"{scope}_b_{what}"]
