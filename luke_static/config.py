"""LUKE's architecture as a dataclass (read from HF `config.json` or PaddleNLP `model_config.json`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from engine.config import from_dict
from engine.errors import ConfigError


@dataclass
class LukeConfig:
    """Sizes and switches of the entity-aware transformer (defaults: luke-base as published)."""

    vocab_size: int = 50267
    entity_vocab_size: int = 500000
    hidden_size: int = 768
    entity_emb_size: int = 256
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 514
    type_vocab_size: int = 1
    layer_norm_eps: float = 1e-5
    use_entity_aware_attention: bool = True
    pad_token_id: int = 1

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads


def from_pretrained_config(data: dict, source: str) -> LukeConfig:
    """A `LukeConfig` from the key/values of an HF or PaddleNLP config file.

    Keys that do not shape the encoder (generation settings, label maps,
    library versions, parallelism flags: each release of transformers or
    PaddleNLP adds some) are ignored; a config of another model type, or one
    asking for a computation this encoder does not do, is an error.
    """
    model_type = data.get("model_type", "luke")
    if model_type != "luke":
        raise ConfigError(f"{source}: model_type {model_type!r} is not a LUKE config")
    if data.get("hidden_act", "gelu") != "gelu":
        raise ConfigError(f"{source}: hidden_act {data['hidden_act']!r} is not supported (only 'gelu')")
    if data.get("position_embedding_type", "absolute") != "absolute":
        raise ConfigError(f"{source}: position_embedding_type {data['position_embedding_type']!r} is not "
                          "supported (only 'absolute')")
    names = {f.name for f in dataclasses.fields(LukeConfig)}
    known = {k: v for k, v in data.items() if k in names}
    if "layer_norm_epsilon" in data and "layer_norm_eps" not in data:
        known["layer_norm_eps"] = data["layer_norm_epsilon"]
    return from_dict(LukeConfig, known, source=source)
