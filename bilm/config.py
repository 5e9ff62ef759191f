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
    # bytes: UTF-8 bytes, bilm-tf's fixed table; characters: one id per character of the model's own
    # character vocabulary (characters.json; ELMoForManyLangs imports)
    spelling: Literal["bytes", "characters"] = "bytes"
    num_characters: int = 0  # characters: rows of the character table (taken from characters.json)

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
        if self.num_characters < 0:
            raise ValueError("char_cnn.num_characters must be >= 0")

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
    # vector; word+char: a word table (word_dim wide) beside the character CNN,
    # concatenated and projected (ELMoForManyLangs). The softmax is over the word vocabulary either way.
    input: Literal["word", "char", "word+char"] = "word"
    char_cnn: CharCNNConfig = field(default_factory=CharCNNConfig)
    word_dim: int = 0  # word+char: width of the word table
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
        if (self.input == "word+char") != (self.word_dim > 0):
            raise ValueError("word_dim is the word table's width of a word+char model: set it (> 0) exactly "
                             f"when input is word+char (input {self.input}, word_dim {self.word_dim})")

    @property
    def spells(self) -> bool:
        """Whether the model reads characters (char and word+char input)."""
        return self.input != "word"

    @property
    def spelled_chars(self) -> int:
        """Characters per token the reader spells out: 0 for word input."""
        return self.char_cnn.max_characters if self.spells else 0

    def with_characters(self, characters: tuple[str, ...]) -> "BiLMConfig":
        """Fills in the character table's size from a model's character vocabulary (`characters` spelling),
        checking it against an explicit setting."""
        c = self.char_cnn
        if not self.spells or c.spelling != "characters":
            if characters:
                raise ConfigError("the model has a character vocabulary but does not spell with it "
                                  "(model.char_cnn.spelling is not 'characters')")
            return self
        if not characters:
            raise ConfigError("model.char_cnn.spelling is 'characters' but the model has no character vocabulary "
                              "(characters.json)")
        if c.num_characters not in (0, len(characters)):
            raise ConfigError(f"model.char_cnn.num_characters is {c.num_characters} but the character vocabulary "
                              f"has {len(characters)} entries")
        return dataclasses.replace(self, char_cnn=dataclasses.replace(c, num_characters=len(characters)))

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

