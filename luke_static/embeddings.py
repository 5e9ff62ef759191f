"""Word and entity embeddings of LUKE (HF `LukeEmbeddings`, `LukeEntityEmbeddings`)."""

from __future__ import annotations

import paddle
import paddle.nn.functional as F

from luke_static.layers import LukeParams


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
