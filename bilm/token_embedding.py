"""Token vectors, the biLM's layer 0, for either input kind.

A word model looks its ids up in `embedding_para`; a character model spells
each token into the character encoder. Everything above this layer (the
LSTMs, the ELMo layers, the losses) is the same for both.
"""

from __future__ import annotations

import numpy as np
import paddle

from bilm.char_cnn import char_token_embedding
from bilm.config import BiLMConfig
from bilm.params import BiLMParams
from reader.chars import boundary_char_ids


def input_data(name: str, cfg: BiLMConfig, batch: int = -1, steps: int = -1):
    """A feed for the biLM's tokens: word ids [B,T] or character ids [B,T,max_characters] (int64)."""
    shape = [batch, steps] + ([cfg.char_cnn.max_characters] if cfg.input == "char" else [])
    return paddle.static.data(name, shape, "int64")


def embed_tokens(params: BiLMParams, cfg: BiLMConfig, tokens):
    """[B,T,E] token vectors for word ids [B,T] or character ids [B,T,C] (by `cfg.input`)."""
    if cfg.input == "char":
        return char_token_embedding(tokens, params.char_cnn, cfg)
    return paddle.nn.functional.embedding(tokens, params.embedding)


def boundary_embeddings(params: BiLMParams, cfg: BiLMConfig, bos_id: int, eos_id: int):
    """The `<S>` and `</S>` vectors, [1,E] each (from their word ids, or their spellings)."""
    if cfg.input == "char":
        tokens = np.stack(boundary_char_ids(cfg.char_cnn.max_characters))[:, None, :]  # [2,1,C]
    else:
        tokens = np.array([[bos_id], [eos_id]], np.int64)  # [2,1]
    both = embed_tokens(params, cfg, paddle.assign(tokens))  # [2,1,E]
    return both[0], both[1]
