"""ELMo inside your own static network: `emb`, `elmo_encoder`, `load_pretrained`.

    model = bilm.ElmoModel.from_dir("output/elmo/model")   # model.json + vocab.txt
    with paddle.static.program_guard(main, startup):
        word_ids = paddle.static.data("word_ids", model.input_shape, "int64")   # ids in model.vocab
        lengths = paddle.static.data("lengths", [-1], "int64")
        vectors = bilm.elmo_encoder(bilm.emb(word_ids, model), lengths, model)   # [B, T, 2P]
        ...                                                  # your layers on top
    exe.run(startup)
    bilm.load_pretrained(exe, model.directory, main)        # after the startup program

The biLM variables keep the fluid release's names and are frozen (not
trainable, so no optimizer touches them); only the scalar mix (`ELMo_w`,
`ELMo_gamma`) trains with your task. Every sentence starts from a zero LSTM
state, so a sentence's vectors never depend on its batch neighbours. A
character model (`model.json` says `"input": "char"`) takes character ids
[B, T, C] instead of word ids (`reader.chars.padded_char_ids`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import paddle

from bilm.config import BiLMConfig
from bilm.encoder import encode_embedded, wrap_embedded
from bilm.model_dir import read_model_dir
from bilm.params import create_params, variable_shapes
from bilm.token_embedding import boundary_embeddings, embed_tokens
from engine.dropout import StepDropout
from engine.errors import CheckpointError
from engine.variables import check_directory
from reader.vocab import Vocabulary

MIX_WEIGHTS, MIX_SCALE = "ELMo_w", "ELMo_gamma"


@dataclass(frozen=True)
class ElmoModel:
    """A pretrained biLM to embed in a program: its architecture, vocabulary and directory."""

    cfg: BiLMConfig
    vocab: Vocabulary
    directory: Path

    @classmethod
    def from_dir(cls, directory: str | Path) -> "ElmoModel":
        """Reads `model.json` and `vocab.txt` of a model (or checkpoint) directory."""
        cfg, vocab = read_model_dir(directory)
        return cls(cfg, vocab, Path(directory))

    @property
    def input_shape(self) -> list[int]:
        """Shape of the token feed `emb` takes: [-1, -1] word ids or [-1, -1, C] character ids."""
        cfg = self.cfg
        return [-1, -1] + ([cfg.char_cnn.max_characters] if cfg.input == "char" else [])

    @property
    def dim(self) -> int:
        """Width of the ELMo vectors (2 · projection size)."""
        return 2 * self.cfg.embed_size


def emb(tokens, model: ElmoModel):
    """The biLM's token vectors [B,T,E] (layer 0), frozen.

    `tokens`: word ids [B,T] (ids in `model.vocab`), or for a character model
    (`model.cfg.input == "char"`) character ids [B,T,C] from
    `reader.chars.padded_char_ids` (int64; `model.input_shape` says which).
    """
    params = create_params(model.cfg, with_softmax=False, trainable=False)
    return embed_tokens(params, model.cfg, tokens)


def elmo_encoder(x_emb, lengths, model: ElmoModel, l2_coef: float = 0.001, dropout: float = 0.0,
                 dropout_seed=None, all_layers: bool = False):
    """ELMo vectors [B,T,2P]: γ · Σ_k softmax(w)_k · layer_k over the biLM's L+1 layers.

    `x_emb` [B,T,E] comes from `emb`; `lengths` [B] int64 counts each
    sentence's words (no boundary tokens: `<S>`/`</S>` are added here, as the
    biLM saw them in training, and dropped from the output). `w` (`ELMo_w`,
    zeros, L2 decay `l2_coef`) and `γ` (`ELMo_gamma`, 1.0) are the task's
    trainable parameters. `dropout` applies to the mix in training programs:
    masks from `dropout_seed` (an int32 [1] feed, see `engine.dropout`) when
    given, else from Paddle's generator. Padding positions are zero.
    With `all_layers=True`, returns the layers [B, L+1, T, 2P] instead.
    """
    cfg = model.cfg
    params = create_params(cfg, with_softmax=False, trainable=False)
    bos, eos = boundary_embeddings(params, cfg, model.vocab.bos_id, model.vocab.eos_id)
    wrapped = wrap_embedded(x_emb, lengths, bos, eos)
    layers = encode_embedded(params, cfg, wrapped, lengths + 2, word_lengths=lengths).layers
    layers.stop_gradient = True
    if all_layers:
        return layers
    mixed = scalar_mix(layers, l2_coef)
    if dropout > 0:
        if dropout_seed is not None:
            mixed = StepDropout(dropout, dropout_seed)(mixed)
        else:
            mixed = paddle.nn.functional.dropout(mixed, dropout, training=True)
    return mixed


def elmo(tokens, lengths, model: ElmoModel, **kwargs):
    """`elmo_encoder(emb(tokens, model), lengths, model, **kwargs)` in one call."""
    return elmo_encoder(emb(tokens, model), lengths, model, **kwargs)


def scalar_mix(layers, l2_coef: float = 0.001):
    """γ · Σ_k softmax(w)_k · layers[:, k] for layers [B, K, T, D] → [B, T, D] (original names)."""
    k = layers.shape[1]
    w = paddle.static.create_parameter(
        [k], "float32", attr=paddle.ParamAttr(name=MIX_WEIGHTS, initializer=paddle.nn.initializer.Constant(0.0),
                                              regularizer=paddle.regularizer.L2Decay(l2_coef)))
    gamma = paddle.static.create_parameter(
        [1], "float32", attr=paddle.ParamAttr(name=MIX_SCALE, initializer=paddle.nn.initializer.Constant(1.0)))
    weights = paddle.nn.functional.softmax(w).reshape([1, k, 1, 1])
    return gamma * (layers * weights).sum(axis=1)


@dataclass
class LoadReport:
    """What `load_pretrained` found: loaded biLM variables and those it did not find."""

    loaded: list[str]
    missing: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"loaded {len(self.loaded)} biLM variables"
        return text + (f"; missing: {', '.join(self.missing)}" if self.missing else "")


def load_pretrained(exe, dirname: str | Path, program=None, allow_missing: bool = False) -> LoadReport:
    """Loads the biLM variables of `program` from a model or checkpoint directory, by name.

    Run it after the startup program. Every file is checked first (a missing
    variable is an error unless `allow_missing`; a wrong shape names the
    variable and both shapes), then `paddle.static.load_vars` reads them.
    Other files in the directory — a pretraining checkpoint's softmax or
    optimizer state, say — are ignored, and so is everything in the program
    that is not a biLM variable (your own parameters, learning rates).
    """
    program = program or paddle.static.default_main_program()
    cfg, _ = read_model_dir(dirname)
    bilm_names = set(variable_shapes(cfg, with_softmax=True))
    in_program = {p.name: tuple(p.shape) for p in program.global_block().all_parameters() if p.name in bilm_names}
    if not in_program:
        raise CheckpointError("the program has no biLM variables (build it with bilm.emb / bilm.elmo_encoder)")
    found = check_directory(dirname, in_program, allow_missing=allow_missing)
    params = [p for p in program.global_block().all_parameters() if p.name in found]
    paddle.static.load_vars(exe, str(dirname), program, vars=params)
    return LoadReport(sorted(found), sorted(set(in_program) - set(found)))
