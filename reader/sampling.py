"""The log-uniform candidate sampler of the sampled softmax (host side, numpy).

Runs in the reader's worker process so the executor never waits for it. The
ids must be sorted by descending frequency for the log-uniform (Zipfian)
distribution to approximate the unigram distribution.
"""

from __future__ import annotations

import numpy as np

from reader.lm import NEG_IDS, NUM_TRIES


class LogUniformSampler:
    """Draws `num_samples` distinct ids from P(k) = log((k+2)/(k+1)) / log(V+1)."""

    def __init__(self, vocab_size: int, num_samples: int):
        if not 0 < num_samples < vocab_size:
            raise ValueError(f"num_samples must be in (0, {vocab_size}), got {num_samples}")
        self.vocab_size = vocab_size
        self.num_samples = num_samples
        self._log_range = np.log(vocab_size + 1.0)

    def probability(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.float64)
        return np.log((ids + 2.0) / (ids + 1.0)) / self._log_range

    def expected_count(self, ids: np.ndarray, num_tries: int) -> np.ndarray:
        """Expected number of times each id appears among `num_tries` draws."""
        return -np.expm1(num_tries * np.log1p(-self.probability(ids)))

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """Returns (distinct ids [num_samples] int64, number of draws it took)."""
        draws = np.empty(0, dtype=np.int64)
        chunk = 2 * self.num_samples
        while True:
            u = rng.random(chunk)
            new = np.floor(np.exp(u * self._log_range)).astype(np.int64) - 1
            draws = np.concatenate([draws, np.clip(new, 0, self.vocab_size - 1)])
            values, first = np.unique(draws, return_index=True)
            if len(values) >= self.num_samples:
                order = np.sort(first)[: self.num_samples]
                return draws[order], int(order[-1]) + 1
            chunk *= 2


class NegativeSampling:
    """Batch transform: adds `neg_ids` and `num_tries` for the sampled softmax.

    The draw for batch i is seeded by (seed, i), so a resumed run samples
    exactly what the uninterrupted run would have.
    """

    def __init__(self, vocab_size: int, num_samples: int, seed: int):
        self.sampler = LogUniformSampler(vocab_size, num_samples)
        self.seed = seed

    def __call__(self, batch):
        ids, tries = self.sampler.draw(np.random.default_rng([self.seed, 7919, batch.index]))
        batch.arrays[NEG_IDS] = ids
        batch.arrays[NUM_TRIES] = np.array([tries], dtype=np.float32)
        return batch
