"""The LUKE encoder as a static program: embeddings, entity-aware transformer, pooler.

Feeds carry HF's argument names (`input_ids`, `attention_mask`,
`token_type_ids`, `entity_ids`, `entity_attention_mask`,
`entity_token_type_ids`, `entity_position_ids`), outputs HF's
(`word_last_hidden_state`, `entity_last_hidden_state`, `pooler_output`).
A word-only program (no entity feeds) is plain RoBERTa-style attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import paddle
import paddle.nn.functional as F

from engine.dropout import StepDropout
from luke_static.attention import self_attention
from luke_static.config import LukeConfig
from luke_static.embeddings import entity_embeddings, word_embeddings
from luke_static.layers import LukeParams

WORD_FEEDS = ("input_ids", "attention_mask", "token_type_ids")
ENTITY_FEEDS = ("entity_ids", "entity_attention_mask", "entity_token_type_ids", "entity_position_ids")
OUTPUTS = ("word_last_hidden_state", "entity_last_hidden_state", "pooler_output")
# Added to the scores of masked positions, as HF does (the float32 minimum).
_MASKED = float(np.finfo(np.float32).min)


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


def luke_encoder(cfg: LukeConfig, feeds: dict, params: LukeParams | None = None, dropout_seed=None,
                 with_pooler: bool = True) -> LukeOutputs:
    """Builds the encoder over `feeds` (from `luke_feeds`) into the current program.

    `dropout_seed` (an int32 [1] feed, see `engine.dropout`) turns dropout on,
    for training programs; without it the program is deterministic.
    """
    params = params or LukeParams(cfg, with_pooler=with_pooler)
    dropout = StepDropout(cfg.hidden_dropout_prob, dropout_seed)
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
    cfg = params.cfg
    attended = self_attention(params, f"{prefix}.attention.self", words, entities, mask,
                              lambda x: dropout(x, cfg.attention_probs_dropout_prob))
    both = words if entities is None else paddle.concat([words, entities], axis=1)
    x = params.layer_norm(f"{prefix}.attention.output.LayerNorm",
                          dropout(params.linear(f"{prefix}.attention.output.dense", attended)) + both)
    inner = F.gelu(params.linear(f"{prefix}.intermediate.dense", x))
    x = params.layer_norm(f"{prefix}.output.LayerNorm", dropout(params.linear(f"{prefix}.output.dense", inner)) + x)
    if entities is None:
        return x, None
    word_count = paddle.shape(words)[1]
    return x[:, :word_count], x[:, word_count:]
