"""ELMo layers for padded batches of sentences (inference and downstream use).

Given tokens (word ids [B,T], or character ids [B,T,C] for a character
model) and lengths [B], returns every biLM layer for every
token, bilm-tf's layout: layer 0 is the token embedding duplicated to
[e ; e], layer k the k-th LSTM layer as [forward ; backward] (residual
included), each 2·P wide. Every sentence starts from a zero state and padding
never reaches real tokens, so a sentence's vectors do not depend on its batch
neighbours. Sentences are wrapped in `<S>` … `</S>` inside the program and
the boundary positions are dropped from the output, as bilm-tf does.
"""

from __future__ import annotations

from dataclasses import dataclass

import paddle

from bilm.config import BiLMConfig
from bilm.network import run_direction, zero_state
from bilm.params import BiLMParams
from bilm.token_embedding import boundary_embeddings, embed_tokens


def sentence_mask(lengths, steps):
    """[B,T] float32: 1 for positions < length."""
    t = paddle.arange(steps, dtype="int64").unsqueeze(0)
    return paddle.cast(t < lengths.unsqueeze(1), "float32")


def reverse_padded(x, lengths):
    """Reverses each row's first `length` positions of x [B,T,...]; padding stays in place."""
    steps = paddle.shape(x)[1]
    t = paddle.arange(steps, dtype="int64").unsqueeze(0)
    length = lengths.unsqueeze(1)
    index = paddle.where(t < length, length - 1 - t, t)
    if len(x.shape) == 2:
        return paddle.take_along_axis(x, index, axis=1)
    index = paddle.expand(index.unsqueeze(-1), [-1, -1, x.shape[-1]])
    return paddle.take_along_axis(x, index, axis=1)


@dataclass
class EncoderOutput:
    """ELMo layers plus each row's final LSTM state (for stateful use)."""

    layers: object  # [B, L+1, T, 2P]
    final_hidden: object  # [2L, B, P]: slots 0..L-1 forward, L..2L-1 backward
    final_cell: object  # [2L, B, H]


def wrap_embedded(x_emb, lengths, bos, eos):
    """[B,T,E] token vectors → [B,T+2,E] with `bos` [1,E] first and `eos` [1,E] after each sentence."""
    rows = paddle.shape(x_emb)[0]
    bos = paddle.expand(bos.unsqueeze(0), [rows, 1, -1])
    x = paddle.concat([bos, x_emb, paddle.zeros_like(bos)], axis=1)
    t = paddle.arange(paddle.shape(x)[1], dtype="int64").unsqueeze(0)
    at_end = (t == lengths.unsqueeze(1) + 1).unsqueeze(-1)
    return paddle.where(at_end, paddle.expand_as(eos.unsqueeze(0), x), x)


def encode(params: BiLMParams, cfg: BiLMConfig, tokens, lengths, bos_id: int | None = None,
           eos_id: int | None = None, init_hidden=None, init_cell=None) -> EncoderOutput:
    """All ELMo layers for tokens and lengths [B] (int64).

    `tokens` are word ids [B,T] or, for a character model, character ids
    [B,T,C] (int64, see `reader.chars`). With `bos_id`/`eos_id` given,
    sentences are wrapped in boundaries inside the program and the output
    covers the words only; without them, `tokens` are used as they are. Rows
    start from `init_hidden` [2L,B,P] / `init_cell` [2L,B,H] when given, else
    from zeros; the final states are those after each row's last real step
    (forward: `</S>`; backward: `<S>`), padding never changing them.
    """
    emb = embed_tokens(params, cfg, tokens)
    if bos_id is None:
        return encode_embedded(params, cfg, emb, lengths, None, init_hidden, init_cell)
    bos, eos = boundary_embeddings(params, cfg, bos_id, eos_id)
    return encode_embedded(params, cfg, wrap_embedded(emb, lengths, bos, eos), lengths + 2, lengths,
                           init_hidden, init_cell)


def encode_embedded(params: BiLMParams, cfg: BiLMConfig, emb, lengths, word_lengths=None,
                    init_hidden=None, init_cell=None) -> EncoderOutput:
    """`encode` from token embeddings [B,T,E]; `word_lengths` given: strip the boundary positions."""
    steps = paddle.shape(emb)[1]
    mask = sentence_mask(lengths, steps)
    emb = emb * mask.unsqueeze(-1)
    fw = _direction(params, cfg, "fw", emb, mask, init_hidden, init_cell, 0)
    bw = _direction(params, cfg, "bw", reverse_padded(emb, lengths), mask, init_hidden, init_cell, cfg.num_layers)
    layers = [paddle.concat([emb, emb], axis=-1)]
    layers += [paddle.concat([f, reverse_padded(b, lengths)], axis=-1) for f, b in zip(fw.layers, bw.layers)]
    out = paddle.stack(layers, axis=1)
    if word_lengths is not None:
        # Drop the boundary positions; `</S>` of shorter sentences sits inside
        # the window, so zero everything past each sentence's last word.
        out = out[:, :, 1 : steps - 1] * sentence_mask(word_lengths, steps - 2).unsqueeze(1).unsqueeze(-1)
    return EncoderOutput(out, paddle.stack(fw.last_hidden + bw.last_hidden),
                         paddle.stack(fw.last_cell + bw.last_cell))


def elmo_layers(params: BiLMParams, cfg: BiLMConfig, tokens, lengths,
                bos_id: int | None = None, eos_id: int | None = None):
    """All ELMo layers [B, L+1, T, 2P], every sentence from a zero state (see `encode`)."""
    return encode(params, cfg, tokens, lengths, bos_id, eos_id).layers


def _direction(params, cfg, direction, x, mask, init_hidden, init_cell, slot):
    L = cfg.num_layers
    if init_hidden is None:
        h0 = [zero_state(x, cfg.embed_size) for _ in range(L)]
        c0 = [zero_state(x, cfg.hidden_size) for _ in range(L)]
    else:
        h0 = [init_hidden[slot + i] for i in range(L)]
        c0 = [init_cell[slot + i] for i in range(L)]
    no_dropout = lambda x: x  # noqa: E731 - inference
    return run_direction(x, params.layers[direction], cfg, h0, c0, no_dropout, mask)
