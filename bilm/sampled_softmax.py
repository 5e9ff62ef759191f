"""Full and sampled softmax losses over the word vocabulary.

Paddle 3 dropped `sampled_softmax_with_cross_entropy`; this rebuilds what the
fluid ELMo used: a log-uniform (Zipfian) candidate sampler over a vocabulary
sorted by descending frequency, unique samples shared by every row of the
batch, logits corrected by the log of each class's expected count, and
accidental hits (a sample equal to the row's target) removed.

The sampler (`reader.sampling.LogUniformSampler`) runs on the host, in the
reader's worker process; the graph receives the sampled ids and the number of
draws it took, and computes the expected counts itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import paddle
import paddle.nn.functional as F

from engine.affine import affine
from engine.row_tables import RowGather, gather_rows

# Added to an accidental hit's logit; as in the fluid op.
_HIT_PENALTY = -1e20


def log_expected_count(ids, num_tries, vocab_size: int):
    """In-graph log of `reader.sampling.LogUniformSampler.expected_count` for int64 `ids` (any shape)."""
    k = paddle.cast(ids, "float32")
    p = paddle.log((k + 2.0) / (k + 1.0)) / float(np.log(vocab_size + 1.0))
    count = -paddle.expm1(num_tries * paddle.log1p(-p))
    return paddle.log(count)


def full_softmax_loss(hidden, targets, weight, bias):
    """Per-row negative log-likelihood: hidden [N,P], targets [N] int64 → [N]."""
    logits = affine(hidden, weight.T, bias)
    return F.cross_entropy(logits, targets.unsqueeze(-1), reduction="none").squeeze(-1)


@dataclass
class SoftmaxRows:
    """The softmax rows a sampled loss reads: its targets' [N,P], [N] and the negatives' [S,P], [S]."""

    true_weight: object
    true_bias: object
    neg_weight: object
    neg_bias: object


def sampled_softmax_loss(hidden, targets, weight, bias, neg_ids, num_tries, vocab_size: int):
    """Sampled-softmax NLL per row.

    hidden [N,P], targets [N] int64, neg_ids [S] int64 (distinct, shared by all
    rows), num_tries [1] float32: how many draws produced them. Returns [N].
    """
    rows = SoftmaxRows(F.embedding(targets, weight), paddle.gather(bias, targets),
                       F.embedding(neg_ids, weight), paddle.gather(bias, neg_ids))
    return sampled_loss_from_rows(hidden, targets, neg_ids, rows, num_tries, vocab_size)


def gathered_softmax_rows(weight, bias, targets, neg_ids) -> tuple[list[RowGather], SoftmaxRows]:
    """The `SoftmaxRows` of `targets` [N] and `neg_ids` read through one gather of the distinct rows.

    Returns the weight's and bias's `RowGather`s too, for the engine's row-wise
    update (`engine.row_tables`); the values equal direct lookups.
    """
    weight_rows, positions = gather_rows(weight, paddle.concat([targets, neg_ids]))
    bias_rows = RowGather(bias, weight_rows.ids, paddle.gather(bias, weight_rows.ids))
    target_at, neg_at = paddle.split(positions, [targets.shape[0], neg_ids.shape[0]])
    rows = SoftmaxRows(*(paddle.gather(g.rows, at) for at in (target_at, neg_at) for g in (weight_rows, bias_rows)))
    return [weight_rows, bias_rows], rows


def sampled_loss_from_rows(hidden, targets, neg_ids, rows: SoftmaxRows, num_tries, vocab_size: int):
    """`sampled_softmax_loss` given the rows it reads (gathered once for both directions in training)."""
    true_logit = (hidden * rows.true_weight).sum(-1) + rows.true_bias
    true_logit = true_logit - log_expected_count(targets, num_tries, vocab_size)
    # The log-Q correction folds into the sampled bias, the bias into the
    # product, and a spare column (zero weight, bias -1e20) joins the samples.
    neg_bias = rows.neg_bias - log_expected_count(neg_ids, num_tries, vocab_size)
    weight = paddle.concat([rows.neg_weight, neg_bias.unsqueeze(-1)], axis=1)  # [S, P+1]
    spare = paddle.concat([paddle.zeros_like(weight[:1, :-1]), paddle.full_like(weight[:1, -1:], _HIT_PENALTY)], 1)
    inputs = paddle.concat([hidden, paddle.ones_like(hidden[:, :1])], axis=-1)
    logits = paddle.matmul(inputs, paddle.concat([weight, spare]), transpose_y=True)  # [N, S+1]
    # The true logit goes where the target is among the samples (an accidental
    # hit's logit is the true logit, so the hit counts once), else into the
    # spare column. One scatter of N values and no concat: comparing every
    # target with every sample and masking [N,S] cost a third of the layer on CPU.
    column = _hit_columns(targets, neg_ids).unsqueeze(-1)
    logits = paddle.put_along_axis(logits, column, true_logit.unsqueeze(-1), 1, "assign")
    # `cross_entropy` (fused softmax + loss) is ~35x faster than `log_softmax` on CPU in Paddle 3.3.1.
    return F.cross_entropy(logits, column, reduction="none").squeeze(-1)


def _hit_columns(targets, neg_ids):
    """Per target, the column of the sample equal to it, or S (the spare column) if none: [N] int64."""
    num_samples = neg_ids.shape[0]
    if num_samples < 0:
        raise ValueError("the sampled softmax needs a fixed number of samples (neg_ids shape [S])")
    ordered, order = paddle.sort(neg_ids), paddle.argsort(neg_ids)
    at = paddle.clip(paddle.searchsorted(ordered, targets), 0, num_samples - 1)
    found = paddle.gather(ordered, at) == targets
    return paddle.where(found, paddle.gather(order, at), paddle.full_like(at, num_samples))
