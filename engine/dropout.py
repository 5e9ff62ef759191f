"""Dropout whose masks are a function of a per-step seed fed to the program.

Paddle's static dropout otherwise draws from a generator whose state lives in
the process: a run resumed from a checkpoint would see different masks than
an uninterrupted one. Feeding `seed` each step (the engine derives it from the
run seed, the step and the rank) and offsetting it per dropout op makes every
mask reproducible, so `--resume` continues bit for bit.

The fed seed is a hash of (run seed, step, rank), not a counter: with
`seed + op index` on consecutive integers, op k+1 at step s would draw the
mask of op k at step s+1.
"""

from __future__ import annotations

import numpy as np
import paddle
from paddle import _C_ops

SEED_FEED = "dropout_seed"
# Fed seeds stay below this so `seed + op index` never overflows int32.
_MAX_SEED = 2**31 - 2**16


def step_seed(seed: int, step: int, rank: int) -> np.ndarray:
    """The value fed as `dropout_seed` at `step` on `rank` (int32 [1])."""
    value = np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0] % _MAX_SEED
    return np.array([value], dtype=np.int32)


def seed_input():
    """The int32 [1] feed that carries the step's dropout seed."""
    return paddle.static.data(SEED_FEED, [1], "int32")


class StepDropout:
    """Inverted dropout (`upscale_in_train`) with masks seeded by `seed + op index`.

    With `seed=None` or `p == 0` it is the identity, which is how evaluation and
    inference programs are built from the same code.
    """

    def __init__(self, p: float, seed=None):
        self.p = float(p)
        self.seed = seed
        self._count = 0

    def __call__(self, x, p: float | None = None):
        """Drops `x` with the default rate, or with `p` (one counter: every op gets its own masks)."""
        p = self.p if p is None else float(p)
        if self.seed is None or p == 0.0:
            return x
        self._count += 1
        # The public `paddle.nn.functional.dropout` cannot take a seed tensor in
        # PIR; the op itself can (checked on Paddle 3.3.1, CPU).
        return _C_ops.dropout(x, self.seed + self._count, p, False, "upscale_in_train", 0, False)
