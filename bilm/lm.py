"""The biLM language-model program: both directions, loss, carried state.

Feeds (all [B,T] int64 unless noted): `token_ids`, `next_token_ids`,
`token_ids_reverse`, `next_token_ids_reverse`; `init_hidden` [2L,B,P] and
`init_cell` [2L,B,H] float32 (slots 0..L-1 forward, L..2L-1 backward); in
training also `dropout_seed` and, with the sampled softmax, `neg_ids` [S]
int64 and `num_tries` [1] float32. A character model also takes each
direction's inputs spelled out, `token_char_ids` / `token_char_ids_reverse`
[B,T,C] int64; its word-id inputs then only mark where sentences start.

The loss is the mean negative log-likelihood over both directions' tokens;
`last_hidden`/`last_cell` (same layout as the init feeds) are fetched each
step and fed back as the next batch's initial state (truncated BPTT).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import paddle

from bilm.config import BiLMConfig
from bilm.network import run_direction
from bilm.params import DIRECTIONS, create_params
from bilm.sampled_softmax import full_softmax_loss, gathered_softmax_rows, sampled_loss_from_rows
from bilm.token_embedding import embed_tokens, input_data
from engine.dropout import SEED_FEED, StepDropout, seed_input
from engine.row_tables import RowGather, gather_rows
from engine.weight_products import WeightProducts
from reader.lm import BW_CHARS, FW_CHARS

TOKEN_FEEDS = {
    "fw": ("token_ids", "next_token_ids"),
    "bw": ("token_ids_reverse", "next_token_ids_reverse"),
}
CHAR_FEEDS = {"fw": FW_CHARS, "bw": BW_CHARS}
INIT_HIDDEN, INIT_CELL = "init_hidden", "init_cell"
LAST_HIDDEN, LAST_CELL = "last_hidden", "last_cell"
NEG_IDS, NUM_TRIES = "neg_ids", "num_tries"


def zero_states(cfg: BiLMConfig, batch_size: int) -> dict[str, np.ndarray]:
    """The initial `init_hidden` / `init_cell` feeds: every row starts from zero."""
    L, B = cfg.num_layers, batch_size
    return {INIT_HIDDEN: np.zeros((2 * L, B, cfg.embed_size), np.float32),
            INIT_CELL: np.zeros((2 * L, B, cfg.hidden_size), np.float32)}


@dataclass
class LMGraph:
    """Values of a built LM program that the training loop feeds and fetches."""

    feeds: dict  # name → data Value
    loss: object  # scalar: mean NLL over both directions
    token_nll: dict  # "fw"/"bw" → [B,T] per-token NLL
    last_hidden: object
    last_cell: object
    row_gathers: list  # `engine.row_tables.RowGather`s of the tables training reads by row


def build_lm(cfg: BiLMConfig, batch_size: int, num_steps: int, training: bool,
             bos_id: int, eos_id: int, products: WeightProducts | None = None) -> LMGraph:
    """Builds the LM forward and loss into the current program.

    `training=True`: dropout and (if configured) the sampled softmax.
    `training=False`: evaluation: no dropout and always the full softmax.
    `bos_id`/`eos_id` mark where a sentence starts in each direction's input,
    for `cfg.state_reset == "sentence"`.
    `products`: give the engine the same `WeightProducts` (`TrainGraph.weight_products`)
    and the LSTM weights get their gradients from one product each.
    """
    B, T, L = batch_size, num_steps, cfg.num_layers
    feeds = {name: paddle.static.data(name, [B, T], "int64")
             for pair in TOKEN_FEEDS.values() for name in pair}
    if cfg.input == "char":
        feeds.update({name: input_data(name, cfg, B, T) for name in CHAR_FEEDS.values()})
    feeds[INIT_HIDDEN] = paddle.static.data(INIT_HIDDEN, [2 * L, B, cfg.embed_size], "float32")
    feeds[INIT_CELL] = paddle.static.data(INIT_CELL, [2 * L, B, cfg.hidden_size], "float32")
    sampled = training and cfg.softmax == "sampled"
    if training:
        feeds[SEED_FEED] = seed_input()
    if sampled:
        feeds[NEG_IDS] = paddle.static.data(NEG_IDS, [cfg.num_samples], "int64")
        feeds[NUM_TRIES] = paddle.static.data(NUM_TRIES, [1], "float32")

    params = create_params(cfg, with_softmax=True)
    dropout = StepDropout(cfg.dropout, feeds.get(SEED_FEED))
    gathers, tokens = [], {}
    if cfg.input == "word" and training:
        table, tokens = _gathered_tokens(params, feeds)
        gathers.append(table)
    hidden, last_r, last_c = [], [], []
    for d, slot, start_id in zip(DIRECTIONS, (0, L), (bos_id, eos_id)):
        ids = feeds[TOKEN_FEEDS[d][0]]
        if d in tokens:
            x = tokens[d]
        else:
            x = embed_tokens(params, cfg, feeds[CHAR_FEEDS[d]] if cfg.input == "char" else ids)
        reset = paddle.cast(ids != start_id, "float32") if cfg.state_reset == "sentence" else None
        out = run_direction(
            x, params.layers[d], cfg,
            [feeds[INIT_HIDDEN][slot + i] for i in range(L)],
            [feeds[INIT_CELL][slot + i] for i in range(L)],
            dropout,
            reset=reset,
            products=products,
        )
        hidden.append(out.top.reshape([B * T, cfg.embed_size]))
        last_r += out.last_hidden
        last_c += out.last_cell

    # Both directions' tokens through the softmax at once: one larger product.
    hidden = paddle.concat(hidden)
    targets = paddle.concat([feeds[TOKEN_FEEDS[d][1]].reshape([B * T]) for d in DIRECTIONS])
    if sampled:
        softmax_gathers, rows = gathered_softmax_rows(params.softmax_weight, params.softmax_bias, targets,
                                                      feeds[NEG_IDS])
        gathers += softmax_gathers
        nll = sampled_loss_from_rows(hidden, targets, feeds[NEG_IDS], rows, feeds[NUM_TRIES], cfg.vocab_size)
    else:
        nll = full_softmax_loss(hidden, targets, params.softmax_weight, params.softmax_bias)
    token_nll = dict(zip(DIRECTIONS, (n.reshape([B, T]) for n in paddle.split(nll, len(DIRECTIONS)))))
    loss = nll.mean()
    return LMGraph(
        feeds=feeds,
        loss=loss,
        token_nll=token_nll,
        last_hidden=paddle.stack(last_r),
        last_cell=paddle.stack(last_c),
        row_gathers=gathers,
    )


# Training reads the word and softmax tables through one gather of the rows a
# step uses (both directions together), so the engine can update only those
# rows (`engine.row_tables`); the values are the same as direct lookups.

def _gathered_tokens(params, feeds: dict) -> tuple[RowGather, dict]:
    """The word table's gather, and each direction's token vectors [B,T,E] read through it."""
    ids = [feeds[TOKEN_FEEDS[d][0]] for d in DIRECTIONS]
    gather, positions = gather_rows(params.embedding, paddle.concat([i.flatten() for i in ids]))
    tokens = {d: paddle.gather(gather.rows, part).reshape(list(i.shape) + [-1])
              for d, part, i in zip(DIRECTIONS, paddle.split(positions, len(ids)), ids)}
    return gather, tokens
