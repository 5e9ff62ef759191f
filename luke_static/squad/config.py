"""The SQuAD job's config (`configs/squad.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.optim import OptimConfig
from engine.runtime import RuntimeConfig
from engine.trainer import TrainConfig
from luke_static.config import FineTuneModelConfig


@dataclass
class SquadDataConfig:
    """The `data:` section."""

    train: str = "data/squad/train-v1.1.json"
    dev: str = "data/squad/dev-v1.1.json"
    max_seq_length: int = 512
    doc_stride: int = 128
    max_query_length: int = 64
    max_entity_length: int = 0  # 0: words only; > 0 needs entity annotations in the data
    n_best: int = 20
    max_answer_length: int = 30
    prefetch: int = 16


@dataclass
class SquadRunConfig:
    data: SquadDataConfig = field(default_factory=SquadDataConfig)
    model: FineTuneModelConfig = field(default_factory=FineTuneModelConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(output_dir="output/squad", batch_size=8))
    # The release's recipe: AdamW (β2 0.98, eps 1e-6, decay 0.01 except biases/LayerNorm),
    # 6% linear warm-up then linear decay, frozen entity embeddings.
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        name="adamw", learning_rate=15e-6, beta2=0.98, epsilon=1e-6, weight_decay=0.01, schedule="linear",
        warmup_ratio=0.06, freeze=["entity_embeddings.entity_embeddings.weight"]))
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
