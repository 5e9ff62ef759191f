"""The LUKE encoder as a static program: parameters, embeddings, entity-aware attention, blocks.

Read top to bottom:

1. **Parameters** under HF's names (`transformers`' `LukeModel`, the `luke.`
   prefix dropped), so a converted checkpoint is a file-per-parameter copy a
   user can read against HF's code; the one layout difference is Paddle's: a
   dense layer's weight is [in, out] (torch: [out, in]).
2. **Embeddings**: RoBERTa word embeddings; entity embeddings (the table,
   projected when narrower than the hidden size, plus the mention's mean
   position).
3. **Entity-aware self-attention**: keys and values over [words; entities],
   the query chosen by who asks whom (`query`, `w2e_query`, `e2w_query`,
   `e2e_query`); ordinary attention without entities or with
   `use_entity_aware_attention` off.
4. **The encoder**: post-LN blocks and the pooler. Feeds carry HF's argument
   names (`input_ids`, `attention_mask`, `token_type_ids`, `entity_ids`,
   `entity_attention_mask`, `entity_token_type_ids`, `entity_position_ids`),
   outputs HF's (`word_last_hidden_state`, `entity_last_hidden_state`,
   `pooler_output`). A word-only program (no entity feeds) is RoBERTa.

Task heads on top are `luke_static.heads`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle.nn.initializer import Constant, Normal

from engine import ops
from engine.ops import StepDropout, affine, affine_gelu
from luke_static.config import LukeConfig

WORD_FEEDS = ("input_ids", "attention_mask", "token_type_ids")
ENTITY_FEEDS = ("entity_ids", "entity_attention_mask", "entity_token_type_ids", "entity_position_ids")
OUTPUTS = ("word_last_hidden_state", "entity_last_hidden_state", "pooler_output")
QUERIES = ("query", "w2e_query", "e2w_query", "e2e_query")
# Added to the scores of masked positions, as HF does (the float32 minimum).
_MASKED = float(np.finfo(np.float32).min)


# -- 1. parameters -------------------------------------------------------------------


def linear(prefix: str, n_in: int, n_out: int, bias: bool = True) -> dict[str, tuple[int, ...]]:
    """The shapes of a dense layer's weight [in, out] (and bias) under `prefix`."""
    shapes = {f"{prefix}.weight": (n_in, n_out)}
    if bias:
        shapes[f"{prefix}.bias"] = (n_out,)
    return shapes


def layer_norm(prefix: str, size: int) -> dict[str, tuple[int, ...]]:
    """The shapes of a LayerNorm's weight and bias under `prefix`."""
    return {f"{prefix}.weight": (size,), f"{prefix}.bias": (size,)}


def variable_shapes(cfg: LukeConfig, with_pooler: bool = True) -> dict[str, tuple[int, ...]]:
    """Every encoder variable: name → shape (Paddle layout)."""
    H, I = cfg.hidden_size, cfg.intermediate_size
    shapes = {
        "embeddings.word_embeddings.weight": (cfg.vocab_size, H),
        "embeddings.position_embeddings.weight": (cfg.max_position_embeddings, H),
        "embeddings.token_type_embeddings.weight": (cfg.type_vocab_size, H),
        **layer_norm("embeddings.LayerNorm", H),
        "entity_embeddings.entity_embeddings.weight": (cfg.entity_vocab_size, cfg.entity_emb_size),
        "entity_embeddings.position_embeddings.weight": (cfg.max_position_embeddings, H),
        "entity_embeddings.token_type_embeddings.weight": (cfg.type_vocab_size, H),
        **layer_norm("entity_embeddings.LayerNorm", H),
    }
    if cfg.entity_emb_size != H:
        shapes.update(linear("entity_embeddings.entity_embedding_dense", cfg.entity_emb_size, H, bias=False))
    queries = QUERIES if cfg.use_entity_aware_attention else QUERIES[:1]
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}"
        for name in (*queries, "key", "value"):
            shapes.update(linear(f"{p}.attention.self.{name}", H, H))
        shapes.update(linear(f"{p}.attention.output.dense", H, H))
        shapes.update(layer_norm(f"{p}.attention.output.LayerNorm", H))
        shapes.update(linear(f"{p}.intermediate.dense", H, I))
        shapes.update(linear(f"{p}.output.dense", I, H))
        shapes.update(layer_norm(f"{p}.output.LayerNorm", H))
    if with_pooler:
        shapes.update(linear("pooler.dense", H, H))
    return shapes


class LukeParams:
    """Creates each encoder variable (by its HF name) the first time a layer asks for it."""

    def __init__(self, cfg: LukeConfig, with_pooler: bool = True, trainable: bool = True, training: bool = False):
        self.cfg = cfg
        self.training = training
        self.shapes = variable_shapes(cfg, with_pooler)
        self.trainable = trainable
        self._made: dict[str, object] = {}

    def __getitem__(self, name: str):
        if name not in self._made:
            shape = self.shapes[name]
            if name.endswith("LayerNorm.weight"):
                init = Constant(1.0)
            elif name.endswith(".bias"):
                init = Constant(0.0)
            else:
                init = Normal(0.0, 0.02)  # HF's initializer_range
            attr = paddle.ParamAttr(name=name, initializer=init, trainable=self.trainable)
            self._made[name] = paddle.static.create_parameter(list(shape), "float32", attr=attr)
        return self._made[name]

    def has(self, name: str) -> bool:
        return name in self.shapes

    def linear(self, prefix: str, x):
        if self.has(f"{prefix}.bias"):
            return affine(x, self[f"{prefix}.weight"], self[f"{prefix}.bias"], self.training)
        return paddle.matmul(x, self[f"{prefix}.weight"])

    def linear_gelu(self, prefix: str, x):
        return affine_gelu(x, self[f"{prefix}.weight"], self[f"{prefix}.bias"], self.training)

    def layer_norm(self, prefix: str, x):
        return ops.layer_norm(x, self[f"{prefix}.weight"], self[f"{prefix}.bias"], self.cfg.layer_norm_eps)


# -- 2. embeddings ---------------------------------------------------------------


def word_embeddings(params: LukeParams, input_ids, token_type_ids, dropout):
    """RoBERTa embeddings: positions count the non-pad tokens from pad+1, pads stay at pad.

    `cumsum(ids != pad) · (ids != pad) + pad` is HF's formula; it needs no
    data-dependent branch, so it is safe in a static program.
    """
    pad = params.cfg.pad_token_id
    real = paddle.cast(input_ids != pad, "int64")
    positions = paddle.cumsum(real, axis=1) * real + pad
    x = (F.embedding(input_ids, params["embeddings.word_embeddings.weight"])
         + F.embedding(positions, params["embeddings.position_embeddings.weight"])
         + F.embedding(token_type_ids, params["embeddings.token_type_embeddings.weight"]))
    return dropout(params.layer_norm("embeddings.LayerNorm", x))


def entity_embeddings(params: LukeParams, entity_ids, entity_position_ids, entity_token_type_ids, dropout):
    """Entity table (projected to the hidden size when narrower) + mean mention position + type.

    `entity_position_ids` [B,N,M] lists each mention's word positions, padded
    with -1; the position embedding is their mean (HF divides by the count
    clamped at 1e-7, so an all-padding mention gets zeros).
    """
    prefix = "entity_embeddings"
    x = F.embedding(entity_ids, params[f"{prefix}.entity_embeddings.weight"])
    if params.has(f"{prefix}.entity_embedding_dense.weight"):
        x = params.linear(f"{prefix}.entity_embedding_dense", x)
    used = paddle.cast(entity_position_ids != -1, "float32").unsqueeze(-1)  # [B,N,M,1]
    positions = F.embedding(paddle.clip(entity_position_ids, min=0), params[f"{prefix}.position_embeddings.weight"])
    mean_position = (positions * used).sum(axis=2) / paddle.clip(used.sum(axis=2), min=1e-7)
    x = x + mean_position + F.embedding(entity_token_type_ids, params[f"{prefix}.token_type_embeddings.weight"])
    return dropout(params.layer_norm(f"{prefix}.LayerNorm", x))


# -- 3. entity-aware self-attention -------------------------------------------------


def self_attention(params: LukeParams, prefix: str, words, entities, mask, dropout):
    """Attention output [B, L+N, H] (before the output dense layer) for word [B,L,H] / entity [B,N,H] states."""
    cfg = params.cfg
    heads = lambda x: _split_heads(x, cfg.num_attention_heads, cfg.head_size)  # noqa: E731
    both = words if entities is None else paddle.concat([words, entities], axis=1)
    key = heads(params.linear(f"{prefix}.key", both))
    value = heads(params.linear(f"{prefix}.value", both))
    if entities is not None and cfg.use_entity_aware_attention:
        word_count = paddle.shape(words)[1]
        key_words, key_entities = key[:, :, :word_count], key[:, :, word_count:]

        def scores(query_name, states, keys):
            return paddle.matmul(heads(params.linear(f"{prefix}.{query_name}", states)), keys, transpose_y=True)

        word_rows = paddle.concat([scores("query", words, key_words),
                                   _scores_through_keys(params, f"{prefix}.w2e_query", words, key_entities)], 3)
        entity_rows = paddle.concat([scores("e2w_query", entities, key_words),
                                     scores("e2e_query", entities, key_entities)], 3)
        attention = paddle.concat([word_rows, entity_rows], axis=2)
    else:
        attention = paddle.matmul(heads(params.linear(f"{prefix}.query", both)), key, transpose_y=True)
    probs = dropout.softmax(attention, math.sqrt(cfg.head_size), mask, cfg.attention_probs_dropout_prob)
    context = paddle.matmul(probs, value)  # [B, heads, S, d]
    return paddle.transpose(context, [0, 2, 1, 3]).reshape([0, 0, cfg.hidden_size])


def _scores_through_keys(params: LukeParams, name: str, states, keys):
    """Per head (states·W_h + b_h)·Kᵀ as states·(W_h·Kᵀ) + b_h·Kᵀ: [B, heads, L, N] for states [B,L,H] and
    keys [B, heads, N, d].

    For the few entity keys this is the cheaper order: the words' query
    product with the w2e weight costs L·H·H per sequence, where W_h·Kᵀ and
    its product with the states cost H·N·(d + L) per head (a sixth of it for
    N = 8 entities and L = 256 words at luke-base's sizes).
    """
    cfg = params.cfg
    heads, size = cfg.num_attention_heads, cfg.head_size
    # [1, heads, d, H], rank 4 like the keys: oneDNN's product fails on broadcast batch axes of different ranks
    weight = params[f"{name}.weight"].reshape([1, cfg.hidden_size, heads, size]).transpose([0, 2, 3, 1])
    through = paddle.matmul(keys, weight).reshape([0, -1, cfg.hidden_size])  # [B, heads·N, H]: rows K·W_hᵀ
    scores = paddle.matmul(states, through, transpose_y=True)  # [B, L, heads·N]
    if params.has(f"{name}.bias"):
        bias = params[f"{name}.bias"].reshape([1, heads, 1, size])
        scores = scores + (keys * bias).sum(axis=-1).reshape([0, 1, -1])  # b_h·Kᵀ [B, 1, heads·N]
    return paddle.transpose(scores.reshape([0, 0, heads, -1]), [0, 2, 1, 3])


def _split_heads(x, num_heads: int, head_size: int):
    return paddle.transpose(x.reshape([0, 0, num_heads, head_size]), [0, 2, 1, 3])


# -- 4. the encoder --------------------------------------------------------------


@dataclass
class LukeOutputs:
    """The encoder's outputs; `entity` is None for a word-only program, `pooled` without a pooler."""

    word: object  # [B, L, H]
    entity: object | None  # [B, N, H]
    pooled: object | None  # [B, H]


def luke_feeds(with_entities: bool = True) -> dict:
    """Data inputs named as HF's arguments (all int64; `entity_position_ids` is [B, N, M])."""
    feeds = {name: paddle.static.data(name, [-1, -1], "int64") for name in WORD_FEEDS}
    if with_entities:
        feeds.update({name: paddle.static.data(name, [-1, -1], "int64") for name in ENTITY_FEEDS[:3]})
        feeds["entity_position_ids"] = paddle.static.data("entity_position_ids", [-1, -1, -1], "int64")
    return feeds


def luke_encoder(cfg: LukeConfig, feeds: dict, dropout: StepDropout | None = None,
                 with_pooler: bool = True, training: bool = False) -> LukeOutputs:
    """Builds the encoder over `feeds` (from `luke_feeds`) into the current program.

    `dropout` (an `engine.ops.StepDropout` at `cfg.hidden_dropout_prob` on the
    step's seed feed) turns dropout on, for training programs; a head that
    drops out too uses the same instance, so every op gets its own masks.
    Without it the program is deterministic. `training` builds the dense
    layers in the form whose gradients are cheaper on CPU (the bias as a
    rank-1 product); otherwise they are a product with the weight and a bias
    add, which serving runtimes fuse and quantize (`engine.ops.affine`). Both
    compute the same.
    """
    params = LukeParams(cfg, with_pooler=with_pooler, training=training)
    dropout = dropout or StepDropout(0.0)
    words = word_embeddings(params, feeds["input_ids"], feeds["token_type_ids"], dropout)
    mask = feeds["attention_mask"]
    entities = None
    if "entity_ids" in feeds:
        entities = entity_embeddings(params, feeds["entity_ids"], feeds["entity_position_ids"],
                                     feeds["entity_token_type_ids"], dropout)
        mask = paddle.concat([mask, feeds["entity_attention_mask"]], axis=1)
    additive = ((1.0 - paddle.cast(mask, "float32")) * _MASKED).unsqueeze(1).unsqueeze(1)  # [B,1,1,S]
    for i in range(cfg.num_hidden_layers):
        words, entities = _layer(params, f"encoder.layer.{i}", words, entities, additive, dropout)
    pooled = None
    if with_pooler:
        pooled = paddle.tanh(params.linear("pooler.dense", words[:, 0]))
    return LukeOutputs(words, entities, pooled)


def _layer(params: LukeParams, prefix: str, words, entities, mask, dropout):
    """One post-LN block over [words; entities]; returns the two parts again."""
    attended = self_attention(params, f"{prefix}.attention.self", words, entities, mask, dropout)
    both = words if entities is None else paddle.concat([words, entities], axis=1)
    x = params.layer_norm(f"{prefix}.attention.output.LayerNorm",
                          dropout(params.linear(f"{prefix}.attention.output.dense", attended)) + both)
    inner = params.linear_gelu(f"{prefix}.intermediate.dense", x)
    x = params.layer_norm(f"{prefix}.output.LayerNorm", dropout(params.linear(f"{prefix}.output.dense", inner)) + x)
    if entities is None:
        return x, None
    word_count = paddle.shape(words)[1]
    return x[:, :word_count], x[:, word_count:]
