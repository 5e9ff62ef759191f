"""Batches from prebuilt feature arrays (an `.npz` of equal-length arrays, one row per feature).

The tasks that tokenize up front (SQuAD windows, Open Entity mentions) save
their features once; a worker process then only shuffles and slices. The
state (pass, position) is all a resumed run needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ArrayBatch:
    index: int
    arrays: dict[str, np.ndarray]
    state: dict = field(default_factory=dict)

    @property
    def num_tokens(self) -> int:
        mask = self.arrays.get("attention_mask")
        return int(mask.sum()) if mask is not None else len(next(iter(self.arrays.values())))


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
        epoch, position, index = (state["epoch"], state["position"], state["batches"]) if state else (0, 0, 0)
        while True:
            order = np.random.default_rng([self.seed, epoch]).permutation(rows) if self.shuffle else np.arange(rows)
            while position < rows:
                take = order[position:position + self.batch_size]
                if self.drop_last and len(take) < self.batch_size:
                    break
                position += len(take)
                index += 1
                yield ArrayBatch(index - 1, {k: v[take] for k, v in arrays.items()},
                                 {"epoch": epoch, "position": position, "batches": index})
            if not self.loop:
                return
            epoch, position = epoch + 1, 0


def save_arrays(path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)
