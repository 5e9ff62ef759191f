"""Batches of rows: from prebuilt feature arrays, and the row order every row-wise reader shares.

The tasks that tokenize up front (SQuAD windows, Open Entity mentions) save
their features once (an `.npz` of equal-length arrays, one row per feature);
a worker process then only shuffles and slices. The state (pass, position)
is all a resumed run needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ArrayBatch:
    """One batch: named arrays (this rank's feeds), its token count, the reader's position after it."""

    index: int
    arrays: dict[str, np.ndarray]
    num_tokens: int
    state: dict = field(default_factory=dict)


def batched_rows(n: int, batch_size: int, *, shuffle: bool, seed: int, loop: bool, drop_last: bool,
                 state: dict | None = None) -> Iterator[tuple[int, np.ndarray, dict]]:
    """(batch index, row indices, state after the batch) over `n` rows, from `state` on.

    Each pass is a permutation seeded by (seed, pass) when shuffling, so the
    state (pass, position, batches) is all it takes to resume exactly.
    """
    if loop and drop_last and n < batch_size:
        raise ValueError(f"{n} rows make no whole batch of {batch_size}")
    epoch, position, index = (state["epoch"], state["position"], state["batches"]) if state else (0, 0, 0)
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
        while position < n:
            take = order[position:position + batch_size]
            if drop_last and len(take) < batch_size:
                break
            position += len(take)
            index += 1
            yield index - 1, take, {"epoch": epoch, "position": position, "batches": index}
        if not loop:
            return
        epoch, position = epoch + 1, 0


@dataclass(frozen=True)
class ArrayStream:
    """Picklable recipe: rows of `path` in batches; training reshuffles each pass with (seed, pass)."""

    path: str
    batch_size: int
    shuffle: bool = False
    seed: int = 0
    loop: bool = False
    drop_last: bool = False

    def __call__(self, state: dict | None = None):
        with np.load(self.path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        rows = len(next(iter(arrays.values())))
        for index, take, after in batched_rows(rows, self.batch_size, shuffle=self.shuffle, seed=self.seed,
                                               loop=self.loop, drop_last=self.drop_last, state=state):
            # Stored compactly (`save_arrays`), fed as the programs' int64.
            batch = {k: v[take].astype(np.int64) if v.dtype.kind in "iu" else v[take] for k, v in arrays.items()}
            mask = batch.get("attention_mask")
            yield ArrayBatch(index, batch, int(mask.sum()) if mask is not None else len(take), after)


def save_arrays(path, arrays: dict[str, np.ndarray]) -> None:
    """Writes equal-length arrays as an `.npz`, integers in the smallest type that holds them.

    Span features are large (a CoNLL-2003 training set has 14k × 128 × 16
    entity positions): int16 instead of int64 keeps the reader's copy small.
    """
    compact = {k: _smallest_int(v) if v.dtype.kind in "iu" else v for k, v in arrays.items()}
    with open(path, "wb") as f:
        np.savez(f, **compact)


def _smallest_int(values: np.ndarray) -> np.ndarray:
    low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
    for dtype in (np.int16, np.int32):
        if np.iinfo(dtype).min <= low and high <= np.iinfo(dtype).max:
            return values.astype(dtype)
    return values
