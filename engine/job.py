"""What a training job hands to the engine, and what the engine asks of it.

A job (ELMo pretraining, the tagger, a LUKE task) is a model builder, a
reader and a config: it builds its training graph (`TrainGraph`), produces
batches (`BatchStream`), evaluates and exports. The engine (`engine.trainer`)
owns everything else: optimizer, gradient all-reduce, the executor loop,
carried state, checkpoints, logging, resume.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from engine.precision import AccuracyFloor


@dataclass
class Carry:
    """State fed into each step and replaced by a fetched value (e.g. LSTM states)."""

    feed: str
    fetch: Any  # the Value fetched at the end of the step
    initial: np.ndarray  # this rank's starting value
    batch_axis: int = 0  # the axis of the batch rows (checkpoints hold every rank's rows)


@dataclass(frozen=True)
class ExportSettings:
    """How a run exports (`train.export_onnx`, `train.export_precision` and its floor)."""

    onnx: bool = False
    precision: str = "fp32"
    floor: AccuracyFloor = AccuracyFloor()


@dataclass
class TrainGraph:
    """A built training forward pass: what the engine feeds, fetches and minimizes."""

    feeds: dict[str, Any]  # name → data Value
    loss: Any  # scalar that is logged
    objective: Any = None  # scalar that is minimized; defaults to `loss`
    carry: list[Carry] = field(default_factory=list)
    # `engine.ops.GradientSource`s: parameters whose gradients the engine forms
    # itself (weights used in many small products, tables read by row).
    gradient_sources: list = field(default_factory=list)
    # Parameter names the model has in other configurations but this graph does
    # not build (LUKE's entity table in a words-only run): `optim.freeze` of
    # one of them is a note, not an error, so one recipe serves both.
    unbuilt_parameters: tuple[str, ...] = ()


class Batch(Protocol):
    """One step's feeds. A batch may also carry `notes` (a list of strings): what the reader
    wants said in the log once, e.g. blank lines it skipped."""

    index: int
    arrays: dict[str, np.ndarray]  # feeds of this step (this rank's share)
    state: dict  # reader position after this batch (JSON-serialisable)

    @property
    def num_tokens(self) -> int: ...


class BatchStream(Protocol):
    """This rank's batches; `reader.prefetch.Prefetcher` produces them in a worker process."""

    wait_seconds: float  # time the consumer spent waiting for batches so far

    def __iter__(self) -> Iterator[Batch]: ...

    def close(self) -> None: ...


class InlineStream:
    """A `BatchStream` over batches made in this process: all their making is waiting."""

    def __init__(self, batches: Iterable[Batch]):
        self._batches = iter(batches)
        self.wait_seconds = 0.0

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        start = time.perf_counter()
        try:
            return next(self._batches)
        finally:
            self.wait_seconds += time.perf_counter() - start

    def close(self) -> None:
        close = getattr(self._batches, "close", None)  # a generator's
        if close is not None:
            close()


class Job(ABC):
    """The parts of a training job the engine calls, in this order.

    `config_class` is the run's config (sections `data`, `model`, `train`,
    `optim`, `runtime`); `python -m engine --config FILE` builds the job
    named by the file's `job:` key as `job_class(cfg, dist)`.
    """

    config_class: ClassVar[type]
    # Whether `export(onnx=True)` can convert this job's programs (`train.export_onnx`).
    exports_onnx: ClassVar[bool] = True
    # The precisions `export` can serve (`train.export_precision`), each checked on the dev set.
    export_precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    # Whether `initialize` honours `train.init_from` (start from another model's variables).
    starts_from_init: ClassVar[bool] = False

    def summary(self) -> str:
        """One line the launcher prints before training (rank 0)."""
        return type(self).__name__

    @abstractmethod
    def build_train_graph(self) -> TrainGraph:
        """Builds the forward pass into the current program (the engine adds the optimization)."""

    def initialize(self, exe, program) -> list[str]:
        """Called once after the startup program, before any checkpoint is restored (e.g. to load
        pretrained variables into the training `program`); returns lines for the log."""
        return []

    @abstractmethod
    def train_batches(self, reader_state: dict | None) -> BatchStream:
        """This rank's batches from `reader_state` on."""

    def check_checkpoint(self, directory: Path) -> None:
        """Raises if a checkpoint to resume from was written for another model."""

    @abstractmethod
    def evaluate(self, exe) -> dict[str, float]:
        """Dev-set metrics with the current parameters (called on rank 0 only)."""

    def describe_metrics(self, metrics: dict[str, float]) -> str:
        """One line for the log; jobs override to show what matters to them."""
        return " | ".join(f"{k} {v:.4g}" for k, v in metrics.items())

    def step_metrics(self, loss: float) -> dict[str, float]:
        """Figures logged beside the mean training loss (e.g. a language model's perplexity)."""
        return {}

    @abstractmethod
    def write_model_files(self, directory: Path) -> None:
        """Adds what makes a checkpoint a self-describing model directory (config, vocabulary)."""

    @abstractmethod
    def export(self, exe, output_dir: Path, settings: ExportSettings = ExportSettings()) -> dict[str, str]:
        """Writes the final model and inference program (as `settings` ask: also as ONNX, also at a
        lower precision); returns {what: path or figures} for the log."""
