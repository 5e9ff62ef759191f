"""The biLM's architecture, as a dataclass (the `model:` section of an ELMo config).

Kept free of Paddle imports so command-line tools can read a config before the
framework starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from engine.errors import ConfigError


@dataclass
class CharCNNConfig:
    """The character encoder of a `model.input: char` biLM (bilm-tf's `char_cnn` options)."""

    embed_size: int = 16  # width of a character's embedding
    # [width, number of filters] per filter bank: bilm-tf's defaults (2048 features)
    filters: list[list[int]] = field(default_factory=lambda: [
        [1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]])
    n_highway: int = 2  # highway layers after the filter bank
    activation: Literal["relu", "tanh"] = "relu"  # after the max over positions
    max_characters: int = 50  # ids per token, begin/end-of-word marks included

    def __post_init__(self):
        if self.embed_size <= 0 or self.n_highway < 0:
            raise ValueError("char_cnn.embed_size must be positive and n_highway >= 0")
        if self.max_characters < 3:
            raise ValueError(f"char_cnn.max_characters must be at least 3, got {self.max_characters}")
        if not self.filters:
            raise ValueError("char_cnn.filters must list at least one [width, count]")
        for item in self.filters:
            if len(item) != 2 or not 0 < item[0] <= self.max_characters or item[1] <= 0:
                raise ValueError(f"char_cnn.filters: {item} is not [width <= max_characters, count > 0]")

    @property
    def num_features(self) -> int:
        """Width of the concatenated filter outputs (the highway layers' width)."""
        return sum(count for _, count in self.filters)


@dataclass
class BiLMConfig:
    """Architecture of the bidirectional LSTMP language model (fluid ELMo defaults)."""

    vocab_size: int = 0  # 0: taken from the vocabulary; otherwise checked against it
    # word: a token table over the vocabulary (the fluid release); char: tokens
    # spelled into a character CNN (bilm-tf, `char_cnn.*`), so any word gets a
    # vector. The softmax is over the word vocabulary either way.
    input: Literal["word", "char"] = "word"
    char_cnn: CharCNNConfig = field(default_factory=CharCNNConfig)
    embed_size: int = 512  # token embedding = LSTM projection size
    hidden_size: int = 4096  # LSTM cell size
    num_layers: int = 2  # LSTM layers per direction
    cell_clip: float = 3.0  # clip the cell to ±value (0: off)
    proj_clip: float = 3.0  # clip the projected output to ±value (0: off)
    use_skip_connections: bool = True  # residual from the second layer on
    forget_bias: float = 0.0  # constant added to the forget gate: 0 (fluid), 1.0 (bilm-tf imports)
    # on each layer's input (twice, as the fluid release) and output; training only
    dropout: float = 0.1
    # sentence: each sentence starts from a zero LSTM state, as ELMo vectors are
    # computed later; stream: the state runs on across sentences (fluid, bilm-tf)
    state_reset: Literal["sentence", "stream"] = "sentence"
    softmax: Literal["full", "sampled"] = "sampled"  # training loss; evaluations always use the full softmax
    num_samples: int = 8000  # negatives per step for the sampled softmax

    def __post_init__(self):
        for name in ("embed_size", "hidden_size", "num_layers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.cell_clip < 0 or self.proj_clip < 0:
            raise ValueError("cell_clip and proj_clip must be >= 0 (0 disables clipping)")

    @property
    def spelled_chars(self) -> int:
        """Characters per token the reader spells out: 0 for word input."""
        return self.char_cnn.max_characters if self.input == "char" else 0

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

