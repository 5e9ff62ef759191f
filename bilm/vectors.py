"""ELMo inside your own static network: the biLM's layers and their scalar mix, loaded from a model.

In your own static network (bilm-tf's `weight_layers`, the fluid release's `bilm.py`):

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
[B, T, C] instead of word ids, and a word+char model (an ELMoForManyLangs
import) [B, T, 1 + C], each token's word id then its characters:
`model.inputs(sentences)` makes either, `model.input_shape` is its shape.

Outside a network, `bilm.embedder` gives the vectors from Python and in
files (`ElmoEmbedder`, `python -m bilm dump`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import paddle

from bilm.config import BiLMConfig
from bilm.formats import read_model_dir
from bilm.model import (
    boundary_embeddings,
    create_params,
    embed_tokens,
    encode_embedded,
    sentence_mask,
    token_ids,
    token_width,
    variable_shapes,
    wrap_embedded,
)
from engine.errors import CheckpointError
from engine.ops import StepDropout
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
        """Shape of the token feed `emb` takes: [-1, -1] word ids, [-1, -1, C] character ids, or
        [-1, -1, 1 + C] for word+char input."""
        return [-1, -1, *token_width(self.cfg)]

    @property
    def dim(self) -> int:
        """Width of the ELMo vectors (2 · projection size)."""
        return 2 * self.cfg.embed_size

    def inputs(self, sentences: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, lengths) of tokenized sentences, padded: what `emb` and `elmo_encoder` are fed.
        Word ids [B,T] (no `<S>`/`</S>`: the encoder adds them; unknown words `<UNK>`), character ids
        [B,T,C] for a character model, or both [B,T,1+C] for word+char input; lengths [B]."""
        return token_ids(sentences, self.cfg, self.vocab), np.array([len(s) for s in sentences], np.int64)


# -- in your own network -------------------------------------------------------------


def emb(tokens, model: ElmoModel, trainable: bool = False):
    """The biLM's token vectors [B,T,E] (layer 0), frozen unless `trainable`.

    `tokens`: word ids [B,T] (ids in `model.vocab`), for a character model
    (`model.cfg.input == "char"`) character ids [B,T,C], for word+char input
    [B,T,1+C] (int64; `model.inputs` makes them, `model.input_shape` says which).
    """
    params = create_params(model.cfg, with_softmax=False, trainable=trainable)
    return embed_tokens(params, model.cfg, tokens)


def elmo_encoder(x_emb, lengths, model: ElmoModel, l2_coef: float = 0.001, dropout: float = 0.0,
                 dropout_seed=None, all_layers: bool = False, trainable: bool = False, layer_norm: bool = False,
                 num_mixes: int = 1, name: str | None = None):
    """ELMo vectors [B,T,2P]: γ · Σ_k softmax(w)_k · layer_k over the biLM's L+1 layers.

    `x_emb` [B,T,E] comes from `emb`; `lengths` [B] int64 counts each
    sentence's words (no boundary tokens: `<S>`/`</S>` are added here, as the
    biLM saw them in training, and dropped from the output). `w` (`ELMo_w`,
    zeros, L2 decay `l2_coef`) and `γ` (`ELMo_gamma`, 1.0) are the task's
    trainable parameters. `dropout` applies to the mix in training programs:
    masks from `dropout_seed` (an int32 [1] feed, see `engine.ops`) when
    given, else from Paddle's generator. Padding positions are zero.
    With `all_layers=True`, returns the layers [B, L+1, T, 2P] instead.

    AllenNLP's options: `trainable=True` fine-tunes the biLM with the task
    (its variables get gradients; pass it to `emb` too; the sentence length
    must be fixed in the program, as the recurrence is then unrolled); `layer_norm=True`
    normalises each layer over its non-padded positions before mixing
    (`do_layer_norm`); `num_mixes=N` returns a list of N independent mixes
    of the same biLM computation (the ELMo paper's input and output mixes),
    named `{name}_{i}_w` / `{name}_{i}_gamma` with `name` default
    `elmo_mix`. One mix keeps the fluid names unless `name` is given.
    """
    cfg = model.cfg
    if trainable and not (x_emb.shape[1] or 0) > 0:
        raise ValueError("trainable=True needs a fixed sentence length (feeds declared as [-1, T], sentences "
                         "padded to T): Paddle 3.3.1's while loop passes no gradient to the weights inside it, "
                         "so the biLM is unrolled over T steps")
    params = create_params(cfg, with_softmax=False, trainable=trainable)
    bos, eos = boundary_embeddings(params, cfg, model.vocab.bos_id, model.vocab.eos_id)
    wrapped = wrap_embedded(x_emb, lengths, bos, eos)
    layers = encode_embedded(params, cfg, wrapped, lengths + 2, word_lengths=lengths).layers
    layers.stop_gradient = not trainable
    if all_layers:
        return layers
    names = [name] if num_mixes == 1 else [f"{name or 'elmo_mix'}_{i}" for i in range(num_mixes)]
    mask = sentence_mask(lengths, paddle.shape(layers)[2]) if layer_norm else None
    mixes = []
    for mix_name in names:
        mixed = scalar_mix(layers, l2_coef, name=mix_name, mask=mask)
        if dropout > 0:
            if dropout_seed is not None:
                mixed = StepDropout(dropout, dropout_seed)(mixed)
            else:
                mixed = paddle.nn.functional.dropout(mixed, dropout, training=True)
        mixes.append(mixed)
    return mixes[0] if num_mixes == 1 else mixes


def elmo(tokens, lengths, model: ElmoModel, **kwargs):
    """`elmo_encoder(emb(tokens, model), lengths, model, **kwargs)` in one call."""
    return elmo_encoder(emb(tokens, model, trainable=kwargs.get("trainable", False)), lengths, model, **kwargs)


def scalar_mix(layers, l2_coef: float = 0.001, name: str | None = None, mask=None):
    """γ · Σ_k softmax(w)_k · layers[:, k] for layers [B, K, T, D] → [B, T, D].

    `name`: the parameters are `{name}_w` and `{name}_gamma` (None: the fluid
    names `ELMo_w`, `ELMo_gamma`). With `mask` [B, T] (1 for real tokens),
    each layer is first normalised by its mean and variance over the real
    positions (AllenNLP's `do_layer_norm`).
    """
    k = layers.shape[1]
    w_name, gamma_name = (MIX_WEIGHTS, MIX_SCALE) if name is None else (f"{name}_w", f"{name}_gamma")
    w = paddle.static.create_parameter(
        [k], "float32", attr=paddle.ParamAttr(name=w_name, initializer=paddle.nn.initializer.Constant(0.0),
                                              regularizer=paddle.regularizer.L2Decay(l2_coef)))
    gamma = paddle.static.create_parameter(
        [1], "float32", attr=paddle.ParamAttr(name=gamma_name, initializer=paddle.nn.initializer.Constant(1.0)))
    if mask is not None:
        layers = _normalised(layers, mask)
    weights = paddle.nn.functional.softmax(w).reshape([1, k, 1, 1])
    return gamma * (layers * weights).sum(axis=1)


def _normalised(layers, mask):
    """Each layer of [B, K, T, D] minus its mean, over its standard deviation, both over the positions
    `mask` [B, T] marks real (one scalar per layer, as AllenNLP's `_do_layer_norm`)."""
    m = paddle.cast(mask, "float32").unsqueeze(1).unsqueeze(-1)  # [B, 1, T, 1]
    count = m.sum() * float(layers.shape[-1])
    mean = (layers * m).sum(axis=[0, 2, 3], keepdim=True) / count
    variance = (((layers - mean) * m) ** 2).sum(axis=[0, 2, 3], keepdim=True) / count
    return (layers - mean) / paddle.sqrt(variance + 1e-12)


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
