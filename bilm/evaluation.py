"""Dev-set perplexity of a biLM: full softmax, no dropout, carried state.

Every sentence of the given shards is read once, in order, as B continuous
streams (the training batching); the last windows are padded and masked, so
no token is dropped. Also reports the unigram perplexity of the same target
tokens under their own frequencies — the number a model must beat by far to
have learnt anything beyond word counts.
"""

from __future__ import annotations

import math

import numpy as np
import paddle

from bilm.config import BiLMConfig
from bilm.lm import INIT_CELL, INIT_HIDDEN, build_lm, zero_states
from reader.lm import BW_TARGET, FW_TARGET, LMStream
from reader.prefetch import Prefetcher
from reader.vocab import Vocabulary


class PerplexityEvaluator:
    """Builds the evaluation program once; `run` evaluates the current parameters."""

    def __init__(self, model: BiLMConfig, files, vocab: Vocabulary, batch_size: int, num_steps: int):
        self.model = model
        self.stream = LMStream(tuple(files), str(vocab.path), batch_size, num_steps, loop=False,
                               max_chars=model.spelled_chars)
        self.program = paddle.static.Program()
        with paddle.static.program_guard(self.program, paddle.static.Program()):
            self.graph = build_lm(model, batch_size, num_steps, training=False,
                                  bos_id=vocab.bos_id, eos_id=vocab.eos_id)
        self._zeros = zero_states(model, batch_size)

    def run(self, exe) -> dict[str, float]:
        """Perplexities (both directions, each direction) and the unigram baseline."""
        g = self.graph
        state = dict(self._zeros)
        nll = {"fw": 0.0, "bw": 0.0}
        counts = np.zeros(self.model.vocab_size, np.int64)
        tokens = 0
        with Prefetcher(self.stream, None, capacity=8) as batches:
            for batch in batches:
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
        return _metrics(nll, counts, tokens)


def _metrics(nll: dict, counts: np.ndarray, tokens: int) -> dict[str, float]:
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
