"""The biLM's variables: names, shapes and creation order of the fluid release.

Keeping the names (`embedding_para`, `fw_layer1_gate_w`, `lstmp_0.w_0`, ...,
`softmax_weight`, `softmax_bias`) lets a fluid ELMo checkpoint directory load
by name, and lets users load our checkpoints into their own programs with
`paddle.static.load_vars`. Layer map: lstmp_0..L-1 are the forward layers,
lstmp_L..2L-1 the backward ones. A character model has the character
encoder's variables (`bilm.char_cnn`) in place of `embedding_para`.
"""

from __future__ import annotations

from dataclasses import dataclass

import paddle
from paddle.nn.initializer import Constant, XavierUniform

from bilm.char_cnn import CharCNNParams, char_variable_shapes, initializer as char_initializer
from bilm.config import BiLMConfig
from bilm.lstmp import LSTMPWeights

DIRECTIONS = ("fw", "bw")
EMBEDDING = "embedding_para"
SOFTMAX_WEIGHT = "softmax_weight"
SOFTMAX_BIAS = "softmax_bias"


def layer_names(cfg: BiLMConfig, direction: str, layer: int) -> dict[str, str]:
    """Variable names of one LSTMP layer (0-based `layer`)."""
    k = layer + (cfg.num_layers if direction == "bw" else 0)
    return {
        "gate_w": f"{direction}_layer{layer + 1}_gate_w",
        "weight": f"lstmp_{k}.w_0",
        "proj": f"lstmp_{k}.w_1",
        "bias": f"lstmp_{k}.b_0",
    }


def variable_shapes(cfg: BiLMConfig, with_softmax: bool = True) -> dict[str, tuple[int, ...]]:
    """Every biLM variable's name → shape, in the fluid creation order."""
    E, H, V = cfg.embed_size, cfg.hidden_size, cfg.vocab_size
    shapes = char_variable_shapes(cfg) if cfg.input == "char" else {EMBEDDING: (V, E)}

    def add_direction(direction):
        for layer in range(cfg.num_layers):
            names = layer_names(cfg, direction, layer)
            shapes[names["gate_w"]] = (E, 4 * H)
            shapes[names["weight"]] = (E, 4 * H)
            shapes[names["proj"]] = (H, E)
            shapes[names["bias"]] = (1, 4 * H)

    add_direction("fw")
    if with_softmax:
        shapes[SOFTMAX_WEIGHT] = (V, E)
        shapes[SOFTMAX_BIAS] = (V,)
    add_direction("bw")
    return shapes


@dataclass
class BiLMParams:
    """Handles to the biLM parameters inside the current static program."""

    embedding: paddle.Tensor | None  # word input
    layers: dict[str, list[LSTMPWeights]]
    char_cnn: CharCNNParams | None = None  # character input
    softmax_weight: paddle.Tensor | None = None
    softmax_bias: paddle.Tensor | None = None


def create_params(cfg: BiLMConfig, with_softmax: bool = True, trainable: bool = True) -> BiLMParams:
    """Creates (or, in a second program, refers to) the biLM parameters by name.

    Programs built in the same scope share parameters through these names: the
    evaluation and export programs read what the training program trained.
    """
    if cfg.vocab_size <= 0:
        raise ValueError("BiLMConfig.vocab_size must be set before building a program")
    created = {
        name: _parameter(name, shape, trainable, _initializer(cfg, name))
        for name, shape in variable_shapes(cfg, with_softmax).items()
    }
    layers = {
        d: [LSTMPWeights(**{k: created[n] for k, n in layer_names(cfg, d, i).items()})
            for i in range(cfg.num_layers)]
        for d in DIRECTIONS
    }
    char_cnn = None
    if cfg.input == "char":
        char_cnn = CharCNNParams({name: created[name] for name in char_variable_shapes(cfg)})
    return BiLMParams(
        embedding=created.get(EMBEDDING),
        layers=layers,
        char_cnn=char_cnn,
        softmax_weight=created.get(SOFTMAX_WEIGHT),
        softmax_bias=created.get(SOFTMAX_BIAS),
    )


def _initializer(cfg: BiLMConfig, name: str):
    if cfg.input == "char" and name in char_variable_shapes(cfg):
        return char_initializer(cfg, name)
    # The fluid release used Xavier everywhere except the LSTMP bias (zeros);
    # softmax_bias was created with is_bias=False, so it got Xavier as well.
    return Constant(0.0) if name.startswith("lstmp_") and name.endswith(".b_0") else XavierUniform()


def _parameter(name: str, shape: tuple[int, ...], trainable: bool, init):
    existing = _existing_parameter(name)
    if existing is not None:  # e.g. `bilm.emb` made the table, `bilm.elmo_encoder` needs it too
        if tuple(existing.shape) != tuple(shape):
            raise ValueError(f"parameter '{name}' already exists with shape {list(existing.shape)}, "
                             f"not {list(shape)}")
        return existing
    attr = paddle.ParamAttr(name=name, initializer=init, trainable=trainable)
    return paddle.static.create_parameter(list(shape), "float32", attr=attr)


def _existing_parameter(name: str):
    for param in paddle.static.default_main_program().global_block().all_parameters():
        if param.name == name:
            return param
    return None
