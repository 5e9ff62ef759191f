"""The biLM's architecture, as a dataclass (the `model:` section of an ELMo config).

Kept free of Paddle imports so command-line tools can read a config before the
framework starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.config import from_dict, read_json, write_json
from engine.errors import ConfigError

MODEL_FILE = "model.json"


@dataclass
class BiLMConfig:
    """Architecture of the bidirectional LSTMP language model (fluid ELMo defaults)."""

    vocab_size: int = 0  # 0: taken from the vocabulary file
    embed_size: int = 512  # token embedding = LSTM projection size
    hidden_size: int = 4096  # LSTM cell size
    num_layers: int = 2
    cell_clip: float = 3.0  # 0 disables
    proj_clip: float = 3.0  # 0 disables
    use_skip_connections: bool = True  # residual from the second layer on
    forget_bias: float = 0.0  # constant added to the forget gate: 0 (fluid), 1.0 (bilm-tf imports)
    dropout: float = 0.1
    # sentence: every sentence starts from a zero LSTM state, as ELMo vectors are
    # computed later; stream: the state runs on across sentences (fluid, bilm-tf).
    state_reset: Literal["sentence", "stream"] = "sentence"
    softmax: Literal["full", "sampled"] = "sampled"  # training loss; evaluation is always full
    num_samples: int = 8000  # negatives per step for the sampled softmax

    def __post_init__(self):
        for name in ("embed_size", "hidden_size", "num_layers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.cell_clip < 0 or self.proj_clip < 0:
            raise ValueError("cell_clip and proj_clip must be >= 0 (0 disables clipping)")

    def with_vocab_size(self, n: int) -> "BiLMConfig":
        """Fills in the vocabulary size, checking it against an explicit setting."""
        if self.vocab_size not in (0, n):
            raise ConfigError(f"model.vocab_size is {self.vocab_size} but the vocabulary has {n} entries")
        cfg = dataclasses.replace(self, vocab_size=n)
        if cfg.softmax == "sampled" and cfg.num_samples >= n:
            raise ConfigError(
                f"model.num_samples ({cfg.num_samples}) must be smaller than the vocabulary ({n}); "
                "use model.softmax=full for small vocabularies"
            )
        return cfg


def save_model_config(cfg: BiLMConfig, directory: str | Path) -> None:
    """Writes `model.json` into a model directory."""
    write_json(Path(directory, MODEL_FILE), cfg)


def load_model_config(directory: str | Path) -> BiLMConfig:
    """Reads `model.json` from a model or checkpoint directory."""
    path = Path(directory, MODEL_FILE)
    data = read_json(path, f"{directory} is not a biLM model directory (no {MODEL_FILE})")
    return from_dict(BiLMConfig, data, source=str(path), prefix="model.")
