"""The ELMo pretraining config: one dataclass per YAML section."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bilm.config import BiLMConfig
from engine.optim import OptimConfig
from engine.runtime import RuntimeConfig
from engine.trainer import TrainConfig


@dataclass
class LMDataConfig:
    """The `data:` section: corpus, vocabulary and batching."""

    # builtin: an English corpus derived from the Python installation's own
    # documentation, built into `builtin_dir` (no download); files: the globs below.
    source: Literal["builtin", "files"] = "files"
    builtin_dir: str = "output/corpus"
    train: str = ""  # glob of training shards (one tokenized sentence per line)
    dev: str = ""  # glob of dev shards
    vocab: str = ""  # one token per line, with <S>, </S>, <UNK>; frequency-sorted
    num_steps: int = 20  # unrolled steps per batch (truncated BPTT length)
    shuffle: bool = True  # shard order and sentence order, reseeded every pass
    num_workers: int = 1  # shard-encoding processes (0: encode in the reader process)
    prefetch: int = 32  # batches buffered ahead of the trainer

    def __post_init__(self):
        if self.num_steps <= 0:
            raise ValueError(f"num_steps must be positive, got {self.num_steps}")


@dataclass
class ElmoConfig:
    """A whole pretraining run (`configs/elmo.yaml`)."""

    data: LMDataConfig = field(default_factory=LMDataConfig)
    model: BiLMConfig = field(default_factory=BiLMConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(output_dir="output/elmo", batch_size=128))
    # The fluid release's recipe.
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        name="adagrad", learning_rate=0.2, initial_accumulator_value=1.0, epsilon=0.0, grad_clip=10.0))
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
