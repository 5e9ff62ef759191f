"""Entity-aware self-attention (HF `LukeSelfAttention`).

Keys and values run over the concatenation [words; entities]; the query
depends on who asks whom: words attending to words use `query`, words to
entities `w2e_query`, entities to words `e2w_query`, entities to entities
`e2e_query`. Without entities, or with `use_entity_aware_attention` off, it
is ordinary attention with `query` over the concatenation.
"""

from __future__ import annotations

import math

import paddle
import paddle.nn.functional as F

from luke_static.layers import LukeParams


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

        word_rows = paddle.concat([scores("query", words, key_words), scores("w2e_query", words, key_entities)], 3)
        entity_rows = paddle.concat([scores("e2w_query", entities, key_words),
                                     scores("e2e_query", entities, key_entities)], 3)
        attention = paddle.concat([word_rows, entity_rows], axis=2)
    else:
        attention = paddle.matmul(heads(params.linear(f"{prefix}.query", both)), key, transpose_y=True)
    probs = dropout(F.softmax(attention / math.sqrt(cfg.head_size) + mask, axis=-1))
    context = paddle.matmul(probs, value)  # [B, heads, S, d]
    return paddle.transpose(context, [0, 2, 1, 3]).reshape([0, 0, cfg.hidden_size])


def _split_heads(x, num_heads: int, head_size: int):
    return paddle.transpose(x.reshape([0, 0, num_heads, head_size]), [0, 2, 1, 3])
