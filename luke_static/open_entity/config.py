"""The Open Entity job's config (`configs/open_entity.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.optim import OptimConfig
from engine.runtime import RuntimeConfig
from engine.trainer import TrainConfig
from luke_static.config import FineTuneModelConfig


@dataclass
class OpenEntityDataConfig:
    """The `data:` section."""

    train: str = "data/open_entity/train.json"
    dev: str = "data/open_entity/dev.json"
    test: str = "data/open_entity/test.json"  # "" to skip the test evaluation
    max_seq_length: int = 256
    prefetch: int = 16


@dataclass
class OpenEntityRunConfig:
    data: OpenEntityDataConfig = field(default_factory=OpenEntityDataConfig)
    model: FineTuneModelConfig = field(default_factory=FineTuneModelConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(output_dir="output/open_entity", batch_size=2))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        name="adamw", learning_rate=1e-5, beta2=0.98, epsilon=1e-6, weight_decay=0.01, schedule="linear",
        warmup_ratio=0.06))
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
