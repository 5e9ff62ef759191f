"""The tagger's config sections (`configs/lac.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.optim import OptimConfig
from engine.runtime import RuntimeConfig
from engine.trainer import TrainConfig


@dataclass
class TaggingDataConfig:
    """The `data:` section: tagged files (`words<TAB>tags` per line) and vocabularies."""

    train: str = "data/lac/train.tsv"
    dev: str = "data/lac/dev.tsv"
    test: str = ""  # evaluated at the end when given
    tags: str = ""  # one tag per line; default: the tags of the training file
    word_min_count: int = 1  # the task's word vocabulary is built from the training file
    prefetch: int = 16


@dataclass
class TaggerConfig:
    """The `model:` section."""

    use_elmo: bool = True
    elmo_model: str = "output/elmo/model"  # a pretrained (or imported) biLM model directory
    elmo_l2: float = 0.001  # L2 decay of the scalar-mix weights ELMo_w
    elmo_dropout: float = 0.5  # on the ELMo vectors, training only
    word_embed_size: int = 128
    gru_hidden: int = 256  # per direction
    gru_layers: int = 2

    def __post_init__(self):
        for name in ("word_embed_size", "gru_hidden", "gru_layers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass
class TaggerRunConfig:
    """A whole tagger run."""

    data: TaggingDataConfig = field(default_factory=TaggingDataConfig)
    model: TaggerConfig = field(default_factory=TaggerConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(output_dir="output/lac", batch_size=32))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adam", learning_rate=1e-3))
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
