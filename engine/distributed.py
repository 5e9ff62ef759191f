"""Host-side collectives between the ranks of a `paddle.distributed.launch` job.

Used for the little state that lives outside the program (the carried LSTM
states of each rank's rows). Eager tensors cannot be created while static
mode is on, so the exchange runs under a dygraph guard (checked on Paddle
3.3.1 with gloo).
"""

from __future__ import annotations

import numpy as np
import paddle


def all_gather_rows(array: np.ndarray, axis: int, world: int) -> np.ndarray:
    """Concatenates every rank's `array` along `axis`, in rank order (on every rank)."""
    if world == 1:
        return array
    with paddle.base.dygraph.guard():
        parts: list = []
        paddle.distributed.all_gather(parts, paddle.to_tensor(np.ascontiguousarray(array)))
        return np.concatenate([p.numpy() for p in parts], axis=axis)


def rank_rows(array: np.ndarray, axis: int, rank: int, world: int) -> np.ndarray:
    """Rank `rank`'s share of a global array: rows rank·n … (rank+1)·n along `axis`."""
    n = array.shape[axis] // world
    return np.take(array, np.arange(rank * n, (rank + 1) * n), axis=axis)
