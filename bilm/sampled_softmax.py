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

from bilm.lstmp import affine

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


def sampled_loss_from_rows(hidden, targets, neg_ids, rows: SoftmaxRows, num_tries, vocab_size: int):
    """`sampled_softmax_loss` given the rows it reads (gathered once for both directions in training)."""
    true_logit = (hidden * rows.true_weight).sum(-1) + rows.true_bias
    true_logit = true_logit - log_expected_count(targets, num_tries, vocab_size)
    # The log-Q correction folds into the sampled bias: one [S] op instead of an [N,S] one.
    neg_bias = rows.neg_bias - log_expected_count(neg_ids, num_tries, vocab_size)
    neg_logits = affine(hidden, rows.neg_weight.T, neg_bias)
    hits = targets.unsqueeze(-1) == neg_ids.unsqueeze(0)
    neg_logits = paddle.where(hits, paddle.full_like(neg_logits, _HIT_PENALTY), neg_logits)
    logits = paddle.concat([true_logit.unsqueeze(-1), neg_logits], axis=-1)
    # The true class sits in column 0. `cross_entropy` (fused softmax + loss) is
    # ~35x faster than `log_softmax` on CPU in Paddle 3.3.1.
    label = paddle.zeros_like(targets).unsqueeze(-1)
    return F.cross_entropy(logits, label, reduction="none").squeeze(-1)
