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


# Keys of HF / PaddleNLP config files that have nothing to do with the encoder's shape.
_IGNORED = {"architectures", "model_type", "transformers_version", "bos_token_id", "eos_token_id",
            "initializer_range", "hidden_act", "torch_dtype", "dtype", "classifier_dropout", "init_class",
            "cls_token_id", "sep_token_id", "entity_pad_token_id", "output_past", "gradient_checkpointing",
            "position_embedding_type", "use_cache", "layer_norm_epsilon", "id2label", "label2id",
            "problem_type", "num_labels", "tie_word_embeddings", "vocab_file", "chunk_size_feed_forward",
            "is_decoder", "add_cross_attention", "pruned_heads", "return_dict", "output_attentions",
            "output_hidden_states", "torchscript", "task_specific_params", "finetuning_task"}


def from_pretrained_config(data: dict, source: str) -> LukeConfig:
    """A `LukeConfig` from the key/values of an HF or PaddleNLP config file."""
    if data.get("hidden_act", "gelu") != "gelu":
        raise ConfigError(f"{source}: hidden_act {data['hidden_act']!r} is not supported (only 'gelu')")
    names = {f.name for f in dataclasses.fields(LukeConfig)}
    known = {k: v for k, v in data.items() if k in names}
    if "layer_norm_epsilon" in data and "layer_norm_eps" not in data:
        known["layer_norm_eps"] = data["layer_norm_epsilon"]
    unknown = sorted(set(data) - names - _IGNORED)
    if unknown:
        raise ConfigError(f"{source}: unexpected key(s) {', '.join(unknown)} (not a LUKE config?)")
    return from_dict(LukeConfig, known, source=source)

