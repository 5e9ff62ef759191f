"""The biLM as a language model: both directions, the softmax losses, carried state, perplexity.

Feeds (names from `reader.lm`; all [B,T] int64 unless noted): each
direction's inputs and targets; `init_hidden` [2L,B,P] and `init_cell`
[2L,B,H] float32 (slots 0..L-1 forward, L..2L-1 backward); in training also
`dropout_seed` and, with the sampled softmax, `neg_ids` [S] int64 and
`num_tries` [1] float32. A character model also takes each direction's inputs
spelled out, [B,T,C] int64; its word-id inputs then only mark where
sentences start.

The loss is the mean negative log-likelihood over both directions' tokens;
`last_hidden`/`last_cell` (same layout as the init feeds) are fetched each
step and fed back as the next batch's initial state (truncated BPTT).

Paddle 3 dropped `sampled_softmax_with_cross_entropy`; the sampled loss is
rebuilt here as the fluid ELMo used it: a log-uniform (Zipfian) sampler over
a vocabulary sorted by descending frequency (`reader.sampling`, run on the
host), unique samples shared by every row, logits corrected by the log of
each class's expected count, accidental hits removed. Evaluation always
uses the full softmax.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import paddle
import paddle.nn.functional as F

from bilm.config import BiLMConfig
from bilm.model import (
    DIRECTIONS,
    EMBEDDING,
    INIT_CELL,
    INIT_HIDDEN,
    SOFTMAX_BIAS,
    SOFTMAX_WEIGHT,
    create_params,
    embed_tokens,
    run_stack,
    spelling,
    zero_states,
)
from engine.ops import SEED_FEED, RowGather, StepDropout, WeightProducts, gather_rows, seed_input
from reader.lm import BW_CHARS, BW_INPUT, BW_TARGET, FW_CHARS, FW_INPUT, FW_TARGET, NEG_IDS, NUM_TRIES, LMStream
from reader.prefetch import Prefetcher
from reader.vocab import Vocabulary

TOKEN_FEEDS = {"fw": (FW_INPUT, FW_TARGET), "bw": (BW_INPUT, BW_TARGET)}
CHAR_FEEDS = {"fw": FW_CHARS, "bw": BW_CHARS}
# The sampled softmax's last column when the target is among the samples: it adds nothing.
_HIT_PENALTY = -1e20


@dataclass
class LMGraph:
    """A built language-model program: its feeds, loss, carried state and gradient sources."""

    feeds: dict  # name → data Value
    loss: object  # scalar: mean NLL over both directions
    token_nll: dict  # "fw"/"bw" → [B,T] per-token NLL
    last_hidden: object  # [2L,B,P]
    last_cell: object  # [2L,B,H]
    # `engine.ops` gradient sources: the LSTM weights' products and the tables read by row.
    gradient_sources: list


def build_lm(cfg: BiLMConfig, batch_size: int, num_steps: int, training: bool, bos_id: int, eos_id: int,
             fast_gradients: bool | None = None) -> LMGraph:
    """Builds the LM forward and loss into the current program.

    `training=True`: dropout and (if configured) the sampled softmax;
    `training=False`: evaluation: no dropout and always the full softmax.
    `bos_id`/`eos_id` mark where a sentence starts in each direction's input,
    for `cfg.state_reset == "sentence"`. `fast_gradients` (default: in
    training) reads the word and softmax tables through row gathers and the
    LSTM weights through recorded products, and lists them as the graph's
    gradient sources; the values are the same as direct lookups and products.
    """
    fast = training if fast_gradients is None else fast_gradients
    B, T = batch_size, num_steps
    feeds = _feeds(cfg, B, T, training)
    params = create_params(cfg, with_softmax=True)
    dropout = StepDropout(cfg.dropout, feeds.get(SEED_FEED))
    products = WeightProducts() if fast else None
    sources, tokens = [products] if fast else [], {}
    if cfg.input == "word" and fast:
        table, tokens = _gathered_tokens(params, feeds)
        sources.append(table)
    hidden, last_r, last_c = [], [], []
    for d, slot, start_id in zip(DIRECTIONS, (0, cfg.num_layers), (bos_id, eos_id)):
        ids = feeds[TOKEN_FEEDS[d][0]]
        x = tokens[d] if d in tokens else embed_tokens(params, cfg, _token_feed(cfg, ids, feeds.get(CHAR_FEEDS[d])))
        reset = paddle.cast(ids != start_id, "float32") if cfg.state_reset == "sentence" else None
        layers = range(slot, slot + cfg.num_layers)
        out = run_stack(x, params.layers[d], cfg, [feeds[INIT_HIDDEN][k] for k in layers],
                        [feeds[INIT_CELL][k] for k in layers], dropout, reset=reset, products=products)
        hidden.append(out.top.reshape([B * T, cfg.embed_size]))
        last_r += out.last_hidden
        last_c += out.last_cell

    # Both directions' tokens through the softmax at once: one larger product.
    hidden = paddle.concat(hidden)
    targets = paddle.concat([feeds[TOKEN_FEEDS[d][1]].reshape([B * T]) for d in DIRECTIONS])
    weight, bias = params[SOFTMAX_WEIGHT], params[SOFTMAX_BIAS]
    if training and cfg.softmax == "sampled":
        if fast:
            gathers, rows = gathered_softmax_rows(weight, bias, targets, feeds[NEG_IDS])
            sources += gathers
        else:
            rows = softmax_rows(weight, bias, targets, feeds[NEG_IDS])
        nll = sampled_loss_from_rows(hidden, targets, feeds[NEG_IDS], rows, feeds[NUM_TRIES], cfg.vocab_size)
    else:
        nll = full_softmax_loss(hidden, targets, weight, bias)
    token_nll = dict(zip(DIRECTIONS, (n.reshape([B, T]) for n in paddle.split(nll, len(DIRECTIONS)))))
    return LMGraph(feeds, nll.mean(), token_nll, paddle.stack(last_r), paddle.stack(last_c), sources)


def _token_feed(cfg: BiLMConfig, ids, chars):
    """What `embed_tokens` takes, from a direction's word ids [B,T] and spellings [B,T,C]."""
    if cfg.input == "word+char":
        return paddle.concat([ids.unsqueeze(-1), chars], axis=-1)
    return chars if cfg.input == "char" else ids


def _feeds(cfg: BiLMConfig, B: int, T: int, training: bool) -> dict:
    feeds = {name: paddle.static.data(name, [B, T], "int64") for pair in TOKEN_FEEDS.values() for name in pair}
    if cfg.spells:
        C = cfg.char_cnn.max_characters
        feeds.update({name: paddle.static.data(name, [B, T, C], "int64") for name in CHAR_FEEDS.values()})
    feeds[INIT_HIDDEN] = paddle.static.data(INIT_HIDDEN, [2 * cfg.num_layers, B, cfg.embed_size], "float32")
    feeds[INIT_CELL] = paddle.static.data(INIT_CELL, [2 * cfg.num_layers, B, cfg.hidden_size], "float32")
    if training:
        feeds[SEED_FEED] = seed_input()
    if training and cfg.softmax == "sampled":
        feeds[NEG_IDS] = paddle.static.data(NEG_IDS, [cfg.num_samples], "int64")
        feeds[NUM_TRIES] = paddle.static.data(NUM_TRIES, [1], "float32")
    return feeds


def _gathered_tokens(params, feeds: dict) -> tuple[RowGather, dict]:
    """The word table's gather, and each direction's token vectors [B,T,E] read through it.

    Both directions' tokens in one gather, so the engine updates each row a
    step read once (`engine.optim`).
    """
    ids = [feeds[TOKEN_FEEDS[d][0]] for d in DIRECTIONS]
    gather, positions = gather_rows(params[EMBEDDING], paddle.concat([i.flatten() for i in ids]))
    tokens = {d: paddle.gather(gather.rows, part).reshape(list(i.shape) + [-1])
              for d, part, i in zip(DIRECTIONS, paddle.split(positions, len(ids)), ids)}
    return gather, tokens


# -- softmax losses -----------------------------------------------------------------


def full_softmax_loss(hidden, targets, weight, bias):
    """Per-row negative log-likelihood: hidden [N,P], targets [N] int64 → [N]."""
    # The bias folded into the product, [h, 1]·[W, b]ᵀ: for a vocabulary-wide
    # output with N > P rows this copies less than `affine`'s rank-1 bias
    # product would write (docs/benchmarks.md).
    ones = paddle.ones_like(hidden[:, :1])
    logits = paddle.matmul(paddle.concat([hidden, ones], axis=-1),
                           paddle.concat([weight, bias.unsqueeze(-1)], axis=-1), transpose_y=True)
    return F.cross_entropy(logits, targets.unsqueeze(-1), reduction="none").squeeze(-1)


def log_expected_count(ids, num_tries, vocab_size: int):
    """In-graph log of `reader.sampling.LogUniformSampler.expected_count` for int64 `ids` (any shape)."""
    k = paddle.cast(ids, "float32")
    # log((k+2)/(k+1)) rounds the ratio first: for rare words (large k) that
    # costs up to 3e-3 nats in float32; log1p of the small part keeps ~1e-7.
    p = paddle.log1p(1.0 / (k + 1.0)) / float(np.log(vocab_size + 1.0))
    count = -paddle.expm1(num_tries * paddle.log1p(-p))
    return paddle.log(count)


@dataclass
class SoftmaxRows:
    """The softmax rows a sampled loss reads: its targets' [N,P], [N] and the negatives' [S,P], [S]."""

    true_weight: object
    true_bias: object
    neg_weight: object
    neg_bias: object


def softmax_rows(weight, bias, targets, neg_ids) -> SoftmaxRows:
    """The `SoftmaxRows` of `targets` [N] and `neg_ids` [S], looked up directly."""
    return SoftmaxRows(F.embedding(targets, weight), paddle.gather(bias, targets),
                       F.embedding(neg_ids, weight), paddle.gather(bias, neg_ids))


def gathered_softmax_rows(weight, bias, targets, neg_ids) -> tuple[list[RowGather], SoftmaxRows]:
    """`softmax_rows` read through one gather of the distinct rows, and the weight's and bias's gathers."""
    weight_rows, positions = gather_rows(weight, paddle.concat([targets, neg_ids]))
    bias_rows = RowGather(bias, weight_rows.ids, paddle.gather(bias, weight_rows.ids))
    target_at, neg_at = paddle.split(positions, [targets.shape[0], neg_ids.shape[0]])
    rows = SoftmaxRows(*(paddle.gather(g.rows, at) for at in (target_at, neg_at) for g in (weight_rows, bias_rows)))
    return [weight_rows, bias_rows], rows


def sampled_softmax_loss(hidden, targets, weight, bias, neg_ids, num_tries, vocab_size: int):
    """Sampled-softmax NLL per row.

    hidden [N,P], targets [N] int64, neg_ids [S] int64 (distinct, shared by all
    rows), num_tries [1] float32: how many draws produced them. Returns [N].
    """
    rows = softmax_rows(weight, bias, targets, neg_ids)
    return sampled_loss_from_rows(hidden, targets, neg_ids, rows, num_tries, vocab_size)


def sampled_loss_from_rows(hidden, targets, neg_ids, rows: SoftmaxRows, num_tries, vocab_size: int):
    """`sampled_softmax_loss` given the rows it reads (gathered once for both directions in training)."""
    true_logit = (hidden * rows.true_weight).sum(-1) + rows.true_bias
    true_logit = true_logit - log_expected_count(targets, num_tries, vocab_size)
    # The log-Q correction folds into the sampled bias, and the bias into the product.
    neg_bias = rows.neg_bias - log_expected_count(neg_ids, num_tries, vocab_size)
    weight = paddle.concat([rows.neg_weight, neg_bias.unsqueeze(-1)], axis=1)  # [S, P+1]
    inputs = paddle.concat([hidden, paddle.ones_like(hidden[:, :1])], axis=-1)
    sampled = paddle.matmul(inputs, weight, transpose_y=True)  # [N, S]
    # A target among the samples (an accidental hit) is scored in its sample's
    # column, whose logit is the true logit (same row, bias and log Q), so the
    # hit counts once; any other target's true logit goes into a last column.
    # A binary search finds the columns, and the extra column is a concat: an
    # [N, S] comparison mask, or scattering the true logits into the product,
    # cost more on CPU (docs/benchmarks.md).
    column = _hit_columns(targets, neg_ids)
    hit = column < neg_ids.shape[0]
    last = paddle.where(hit, paddle.full_like(true_logit, _HIT_PENALTY), true_logit)
    logits = paddle.concat([sampled, last.unsqueeze(-1)], axis=1)  # [N, S+1]
    # `cross_entropy` (fused softmax + loss) is ~35x faster than `log_softmax` on CPU in Paddle 3.3.1.
    return F.cross_entropy(logits, column.unsqueeze(-1), reduction="none").squeeze(-1)


def _hit_columns(targets, neg_ids):
    """Per target, the column of the sample equal to it, or S (the spare column) if none: [N] int64."""
    num_samples = neg_ids.shape[0]
    if num_samples < 0:
        raise ValueError("the sampled softmax needs a fixed number of samples (neg_ids shape [S])")
    ordered, order = paddle.sort(neg_ids), paddle.argsort(neg_ids)
    at = paddle.clip(paddle.searchsorted(ordered, targets), 0, num_samples - 1)
    found = paddle.gather(ordered, at) == targets
    return paddle.where(found, paddle.gather(order, at), paddle.full_like(at, num_samples))


# -- perplexity ---------------------------------------------------------------------


class PerplexityEvaluator:
    """Dev-set perplexity: full softmax, no dropout, carried state.

    Every sentence of the given shards is read once, in order, as B continuous
    streams (the training batching); the last windows are padded and masked,
    so no token is dropped. Also reports the unigram perplexity of the same
    target tokens under their own frequencies — the number a model must beat
    by far to have learnt anything beyond word counts. The program is built
    once; `run` evaluates the current parameters.
    """

    def __init__(self, model: BiLMConfig, files, vocab: Vocabulary, batch_size: int, num_steps: int,
                 segment: str = "none"):
        self.model = model
        self.stream = LMStream(tuple(files), str(vocab.path), batch_size, num_steps, loop=False,
                               spelling=spelling(model, vocab), segment=segment)
        self.program = paddle.static.Program()
        with paddle.static.program_guard(self.program, paddle.static.Program()):
            self.graph = build_lm(model, batch_size, num_steps, training=False,
                                  bos_id=vocab.bos_id, eos_id=vocab.eos_id)
        self._zeros = zero_states(model, batch_size)
        self.notes: list[str] = []  # what the last run's reading skipped (blank lines)

    def run(self, exe) -> dict[str, float]:
        """Perplexities (both directions, each direction) and the unigram baseline."""
        g = self.graph
        state = dict(self._zeros)
        nll = {"fw": 0.0, "bw": 0.0}
        counts = np.zeros(self.model.vocab_size, np.int64)
        tokens, notes = 0, []
        with Prefetcher(self.stream, None, capacity=8) as batches:
            for batch in batches:
                notes += batch.notes
                feed = {**batch.arrays, **state}
                fw, bw, h, c = exe.run(self.program, feed=feed,
                                       fetch_list=[g.token_nll["fw"], g.token_nll["bw"], g.last_hidden, g.last_cell])
                state = {INIT_HIDDEN: h, INIT_CELL: c}
                nll["fw"] += float((fw * batch.mask).sum())
                nll["bw"] += float((bw * batch.mask).sum())
                real = batch.mask > 0
                for name in (FW_TARGET, BW_TARGET):
                    counts += np.bincount(batch.arrays[name][real], minlength=self.model.vocab_size)
                tokens += int(real.sum())
        self.notes = notes
        return _perplexities(nll, counts, tokens)


def _perplexities(nll: dict, counts: np.ndarray, tokens: int) -> dict[str, float]:
    if tokens == 0:
        return {"ppl": math.nan, "ppl_fw": math.nan, "ppl_bw": math.nan, "unigram_ppl": math.nan, "tokens": 0}
    p = counts[counts > 0] / counts.sum()
    return {
        "ppl": math.exp((nll["fw"] + nll["bw"]) / (2 * tokens)),
        "ppl_fw": math.exp(nll["fw"] / tokens),
        "ppl_bw": math.exp(nll["bw"] / tokens),
        "unigram_ppl": math.exp(-(p * np.log(p)).sum()),
        "tokens": float(tokens),
    }
