"""Linear-chain CRF for static programs: loss by the forward algorithm, Viterbi decoding.

Paddle 3 removed `linear_chain_crf` and `crf_decoding`. The transition
parameter keeps the fluid layout, one [n+2, n] matrix (`crfw`): row 0 holds
the start scores, row 1 the end scores, rows 2… the transitions
from tag i (row i+2) to tag j (column j). A sequence's score is

    start[y_0] + Σ_t emit[t, y_t] + Σ_{t≥1} trans[y_{t-1}, y_t] + end[y_{n-1}]

and the loss is log Z − score(gold), with log Z by the forward algorithm in
log space; padding positions (t ≥ length) take no part.
"""

from __future__ import annotations

import numpy as np
import paddle


def split_transitions(crfw):
    """(start [n], end [n], transitions [n, n]) of the fluid-layout [n+2, n] parameter."""
    return crfw[0], crfw[1], crfw[2:]


def gold_score(emissions, tags, lengths, crfw):
    """Score of the given tag sequences: emissions [B,T,n], tags [B,T] int64, lengths [B] → [B]."""
    start, end, trans = split_transitions(crfw)
    n = emissions.shape[-1]
    mask = _mask(lengths, paddle.shape(tags)[1])
    emit = paddle.take_along_axis(emissions, tags.unsqueeze(-1), axis=2).squeeze(-1)
    score = (emit * mask).sum(1) + paddle.gather(start, tags[:, 0])
    pair = tags[:, :-1] * n + tags[:, 1:]
    step = paddle.gather(trans.reshape([-1]), pair.reshape([-1])).reshape(paddle.shape(pair))
    score = score + (step * mask[:, 1:]).sum(1)
    last = paddle.take_along_axis(tags, (lengths - 1).unsqueeze(-1), axis=1).squeeze(-1)
    return score + paddle.gather(end, last)


def log_partition(emissions, lengths, crfw):
    """log Z per sequence [B] by the forward algorithm (a while loop over time)."""
    start, end, trans = split_transitions(crfw)
    emit_t = paddle.transpose(emissions, [1, 0, 2])  # [T,B,n]
    mask_t = paddle.transpose(_mask(lengths, paddle.shape(emissions)[1]), [1, 0]).unsqueeze(-1)
    steps = paddle.shape(emit_t)[0]
    alpha0 = start.unsqueeze(0) + emit_t[0]

    def cond(t, alpha):
        return t < steps

    def body(t, alpha):
        scores = alpha.unsqueeze(2) + trans.unsqueeze(0)  # [B, from, to]
        new = paddle.logsumexp(scores, axis=1) + emit_t[t]
        m = mask_t[t]
        return t + 1, m * new + (1.0 - m) * alpha

    _, alpha = paddle.static.nn.while_loop(cond, body, [paddle.full([], 1, "int64"), alpha0])
    return paddle.logsumexp(alpha + end.unsqueeze(0), axis=1)


def crf_loss(emissions, tags, lengths, crfw):
    """Negative log-likelihood per sequence [B]."""
    return log_partition(emissions, lengths, crfw) - gold_score(emissions, tags, lengths, crfw)


# Added to the score of a transition the tag scheme forbids: no allowed path scores that low.
_FORBIDDEN = -1e9


def viterbi_decode(emissions, lengths, crfw, allowed=None):
    """Best tag sequence per row [B,T] int64 (padding positions are 0).

    `allowed`: (may start [n], may follow [n, n]) booleans, e.g.
    `reader.chunks.allowed_transitions`: the best path among those the tag
    scheme can produce (a model trained without constraints may otherwise
    put `X-I` after `O`).

    `paddle.text.viterbi_decode` computes the right values, but in PIR its
    declared output types are swapped (paths float32, scores int64), which
    breaks every op built on top of it; so the recursion is written here.
    Padding steps keep the scores and point back to the same tag, so the
    backtrack passes through them unchanged.
    """
    # Decoding is never differentiated: keep it out of any backward pass.
    emissions, crfw = emissions.detach(), crfw.detach()
    start, end, trans = split_transitions(crfw)
    if allowed is not None:
        may_start, may_follow = allowed
        start = start + paddle.assign(np.where(may_start, 0.0, _FORBIDDEN).astype("float32"))
        trans = trans + paddle.assign(np.where(may_follow, 0.0, _FORBIDDEN).astype("float32"))
    emit_t = paddle.transpose(emissions, [1, 0, 2])  # [T,B,n]
    mask_t = paddle.transpose(_mask(lengths, paddle.shape(emissions)[1]), [1, 0]).unsqueeze(-1)
    steps = paddle.shape(emit_t)[0]
    identity = paddle.expand_as(paddle.arange(emissions.shape[-1], dtype="int64").unsqueeze(0),
                                paddle.cast(emit_t[0], "int64"))
    pointers = paddle.tensor.create_array("int64")
    paddle.tensor.array_write(identity, paddle.full([], 0, "int64"), pointers)

    def forward_cond(t, alpha, pointers):
        return t < steps

    def forward_body(t, alpha, pointers):
        scores = alpha.unsqueeze(2) + trans.unsqueeze(0)  # [B, from, to]
        m = mask_t[t]
        alpha = m * (scores.max(axis=1) + emit_t[t]) + (1.0 - m) * alpha
        back = paddle.where(m > 0, scores.argmax(axis=1), identity)
        paddle.tensor.array_write(back, t, pointers)
        return t + 1, alpha, pointers

    _, alpha, pointers = paddle.static.nn.while_loop(
        forward_cond, forward_body, [paddle.full([], 1, "int64"), start.unsqueeze(0) + emit_t[0], pointers])

    # Backtrack from the best final tag; tags are collected last-first.
    tag = paddle.argmax(alpha + end.unsqueeze(0), axis=1)
    collected = paddle.tensor.create_array("int64")
    paddle.tensor.array_write(tag, paddle.full([], 0, "int64"), collected)

    def back_cond(k, tag, pointers, collected):
        return k < steps

    def back_body(k, tag, pointers, collected):
        back = paddle.tensor.array_read(pointers, steps - k)
        tag = paddle.take_along_axis(back, tag.unsqueeze(1), axis=1).squeeze(1)
        paddle.tensor.array_write(tag, k, collected)
        return k + 1, tag, pointers, collected

    # The arrays are loop variables (a body cannot read an array it does not
    # carry), and each loop gets its own counter: a loop takes over the memory
    # of its initial values, so sharing one between loops leaves the second empty.
    _, _, _, collected = paddle.static.nn.while_loop(
        back_cond, back_body, [paddle.full([], 1, "int64"), tag, pointers, collected])
    reversed_tags, _ = paddle.tensor.manipulation.tensor_array_to_tensor(collected, axis=1, use_stack=True)
    tags = paddle.flip(reversed_tags, axis=[1])
    return tags * paddle.cast(_mask(lengths, steps), "int64")


def _mask(lengths, steps):
    return paddle.cast(paddle.arange(steps, dtype="int64").unsqueeze(0) < lengths.unsqueeze(1), "float32")
