"""What a training job hands to the engine.

A job (ELMo pretraining, the tagger, a LUKE task) builds its training graph,
produces batches, evaluates and exports; the engine (`engine.trainer`) owns
everything else: optimizer, gradient all-reduce, the executor loop, carried
state, checkpoints, logging, resume.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np


@dataclass
class Carry:
    """State fed into each step and replaced by a fetched value (e.g. LSTM states)."""

    feed: str
    fetch: Any  # the Value fetched at the end of the step
    initial: np.ndarray  # this rank's starting value
    batch_axis: int = 0  # the axis of the batch rows (checkpoints hold every rank's rows)


@dataclass
class TrainGraph:
    """A built training forward pass."""

    feeds: dict[str, Any]  # name → data Value
    loss: Any  # scalar that is logged (and whose exp is the logged perplexity)
    objective: Any = None  # scalar that is minimized; defaults to `loss`
    carry: list[Carry] = field(default_factory=list)
    report_perplexity: bool = False  # log exp(loss) beside the loss (language models)
    # Tables read only through `engine.row_tables.gather_rows`: updated row-wise where exact.
    row_gathers: list = field(default_factory=list)
    # An `engine.weight_products.WeightProducts`: weights whose gradient is formed in one product.
    weight_products: Any = None


class Batch(Protocol):
    index: int
    arrays: dict[str, np.ndarray]  # feeds of this step (this rank's share)
    state: dict  # reader position after this batch (JSON-serialisable)

    @property
    def num_tokens(self) -> int: ...


class Job(ABC):
    """The parts of a training job the engine calls, in this order."""

    @abstractmethod
    def build_train_graph(self) -> TrainGraph:
        """Builds the forward pass into the current program (the engine adds the optimizer)."""

    def initialize(self, exe, program) -> None:
        """Called once after the startup program, before any checkpoint is restored
        (e.g. to load pretrained variables into the training `program`)."""

    @abstractmethod
    def train_batches(self, reader_state: dict | None) -> Iterator[Batch]:
        """This rank's batches from `reader_state` on; may have a `close()` method."""

    def check_checkpoint(self, directory: Path) -> None:
        """Raises if a checkpoint to resume from was written for another model."""

    @abstractmethod
    def evaluate(self, exe) -> dict[str, float]:
        """Dev-set metrics with the current parameters (called on rank 0 only)."""

    @abstractmethod
    def write_model_files(self, directory: Path) -> None:
        """Adds what makes a checkpoint a self-describing model directory (config, vocabulary)."""

    @abstractmethod
    def export(self, exe, output_dir: Path) -> dict[str, str]:
        """Writes the final model and inference program; returns {what: path}."""

    def describe_metrics(self, metrics: dict[str, float]) -> str:
        """One line for the log; jobs override to show what matters to them."""
        return " | ".join(f"{k} {v:.4g}" for k, v in metrics.items())
