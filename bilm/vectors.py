"""ELMo vectors for users: inside your own network, from Python, in HDF5 files, as an inference program.

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
[B, T, C] instead of word ids (`reader.chars.padded_char_ids`).

Outside a network: `ElmoEmbedder` (lists of tokens → layers), `dump_file`
(a text file → HDF5, bilm-tf's `dump_bilm_embeddings`), `export_inference_model`
(a program for `paddle.inference`, and for ONNX Runtime), `token_table` (a character model's
vectors for a word list, bilm-tf's `dump_token_embeddings`).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import paddle

from bilm.config import BiLMConfig
from bilm.formats import load_model_variables, read_model_dir, write_model_files
from bilm.lm import zero_states
from bilm.model import (
    INIT_CELL,
    INIT_HIDDEN,
    LENGTHS,
    boundary_embeddings,
    build_encoder,
    create_params,
    embed_tokens,
    encode_embedded,
    sentence_mask,
    token_feed_name,
    variable_shapes,
    wrap_embedded,
)
from engine.errors import CheckpointError
from engine.inference import InferenceProgram, export_onnx, save_inference_program
from engine.ops import StepDropout
from engine.variables import check_directory
from reader.chars import char_ids, padded_char_ids
from reader.vocab import Vocabulary

MIX_WEIGHTS, MIX_SCALE = "ELMo_w", "ELMo_gamma"
INFERENCE_PREFIX, LAYERS_OUTPUT = "elmo", "elmo_layers"


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
        return [-1, -1] + ([self.cfg.char_cnn.max_characters] if self.cfg.input == "char" else [])

    @property
    def dim(self) -> int:
        """Width of the ELMo vectors (2 · projection size)."""
        return 2 * self.cfg.embed_size


# -- in your own network -------------------------------------------------------------


def emb(tokens, model: ElmoModel, trainable: bool = False):
    """The biLM's token vectors [B,T,E] (layer 0), frozen unless `trainable`.

    `tokens`: word ids [B,T] (ids in `model.vocab`), or for a character model
    (`model.cfg.input == "char"`) character ids [B,T,C] from
    `reader.chars.padded_char_ids` (int64; `model.input_shape` says which).
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


# -- outside a network ---------------------------------------------------------------


class ElmoEmbedder:
    """All ELMo layers [n, L+1, T, 2P] for lists of tokens, from a model directory.

    Word models look words up in the model's vocabulary (unknown words become
    `<UNK>`); character models spell every word, so none is unknown. The
    program is built once and run batch after batch. Stateless (the default)
    starts every sentence from a zero LSTM state, so a sentence always gets
    the same vectors. Stateful reproduces bilm-tf: row i of each batch starts
    from the final state of row i of the previous batch (rows beyond a
    smaller batch keep theirs).
    """

    def __init__(self, model_dir: str | Path, place, stateful: bool = False, max_batch_size: int = 64,
                 backend: str = "paddle", threads: int = 2):
        """`backend="onnxruntime"` converts the program to ONNX once (needs the
        [onnx] extra) and runs it with ONNX Runtime on `threads` threads."""
        self.cfg, self.vocab = read_model_dir(model_dir)
        self.stateful = stateful
        program = paddle.static.Program()
        with paddle.static.program_guard(program, paddle.static.Program()):
            graph = build_encoder(self.cfg, self.vocab.bos_id, self.vocab.eos_id, stateful,
                                  portable=backend == "onnxruntime")
        out = graph.output
        outputs = {"layers": out.layers}
        if stateful:
            outputs.update(final_hidden=out.final_hidden, final_cell=out.final_cell)
        exe = paddle.static.Executor(place)
        load_model_variables(model_dir, self.cfg, place, with_softmax=False)
        if backend == "paddle":
            def run(feed):
                return dict(zip(outputs, exe.run(program, feed=feed, fetch_list=list(outputs.values()))))
            self._run = run
        else:
            with tempfile.TemporaryDirectory() as tmp:
                prefix = save_inference_program(Path(tmp, INFERENCE_PREFIX), list(graph.feeds.values()), outputs, exe,
                                                program, onnx=True)
                self._run = InferenceProgram(prefix, threads, backend=backend).run
        self.state = zero_states(self.cfg, max_batch_size) if stateful else None

    def embed(self, sentences: list[list[str]]) -> np.ndarray:
        """Layers for each sentence, padded to the longest: [n, L+1, T, 2P] float32."""
        n = len(sentences)
        if n == 0:
            return np.zeros((0, self.cfg.num_layers + 1, 0, 2 * self.cfg.embed_size), np.float32)
        lengths = np.array([len(s) for s in sentences], np.int64)
        feed = {token_feed_name(self.cfg): self.token_ids(sentences), LENGTHS: lengths}
        if not self.stateful:
            return self._run(feed)["layers"]
        self._grow_state(n)
        feed.update({name: value[:, :n] for name, value in self.state.items()})
        out = self._run(feed)
        self.state[INIT_HIDDEN][:, :n] = out["final_hidden"]
        self.state[INIT_CELL][:, :n] = out["final_cell"]
        return out["layers"]

    def token_ids(self, sentences: list[list[str]]) -> np.ndarray:
        """The token feed for padded sentences: word ids [n,T], or character ids [n,T,C]."""
        return token_ids(sentences, self.cfg, self.vocab)

    def _grow_state(self, rows: int) -> None:
        have = self.state[INIT_HIDDEN].shape[1]
        if rows > have:
            extra = zero_states(self.cfg, rows - have)
            self.state = {k: np.concatenate([v, extra[k]], axis=1) for k, v in self.state.items()}


def token_ids(sentences: list[list[str]], cfg: BiLMConfig, vocab: Vocabulary) -> np.ndarray:
    """What a biLM takes for padded sentences: word ids [n,T] in `vocab`, or character ids [n,T,C]."""
    if cfg.input == "char":
        return padded_char_ids(sentences, cfg.char_cnn.max_characters)
    ids = np.zeros((len(sentences), max([1, *map(len, sentences)])), np.int64)
    for i, words in enumerate(sentences):
        ids[i, : len(words)] = vocab.encode(words, boundaries=False)
    return ids


def select_layers(layers: np.ndarray, mode: str) -> np.ndarray:
    """One sentence's (L+1, n, 2P) layers → `all` of them, the `top` one, or their average (`mix`)."""
    if mode == "top":
        return layers[-1]
    if mode == "mix":
        return layers.mean(axis=0)
    return layers


def embedded_batches(embedder: ElmoEmbedder, batches, layers: str = "all") -> Iterator[tuple]:
    """`([indices], [sentences])` batches → `([indices], [sentences], [each sentence's layers])`, where
    a sentence's layers are `select_layers` of its own positions."""
    for indices, batch in batches:
        vectors = embedder.embed(batch)
        yield indices, batch, [select_layers(vectors[i, :, : len(words)], layers) for i, words in enumerate(batch)]


def embedded_batches_in_processes(model_dir: str | Path, batches, layers: str, processes: int, threads: int,
                                  backend: str = "paddle") -> Iterator[tuple]:
    """`embedded_batches` computed by `processes` worker processes, each with its own stateless
    embedder on `threads` threads. Batches come back in input order, and at most two per worker are
    in flight, so memory stays bounded however long the input."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # Paddle's threads do not survive a fork
    with context.Pool(processes, _start_worker, (str(model_dir), threads, backend)) as pool:
        pending: deque = deque()
        for indices, batch in batches:
            pending.append(pool.apply_async(_embed_in_worker, (indices, batch, layers)))
            if len(pending) >= 2 * processes:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
        # Let the workers exit on their own: leaving the `with` terminates them,
        # which Paddle's signal handler reports as a crash.
        pool.close()
        pool.join()


_worker_embedder: ElmoEmbedder | None = None  # one per worker process of `embedded_batches_in_processes`


def _start_worker(model_dir: str, threads: int, backend: str) -> None:
    from engine.runtime import DistEnv, RuntimeConfig, setup

    global _worker_embedder
    place = setup(RuntimeConfig(threads=threads), DistEnv())
    _worker_embedder = ElmoEmbedder(model_dir, place, backend=backend, threads=threads)


def _embed_in_worker(indices: list[int], batch: list[list[str]], layers: str) -> tuple:
    return next(embedded_batches(_worker_embedder, [(indices, batch)], layers))


def dump_file(embedded, output: str | Path, progress=None) -> dict:
    """Writes one HDF5 dataset per sentence, named by its line index, from `embedded_batches` (or
    `embedded_batches_in_processes`).

    As AllenNLP's `embed_file`, the file also holds `sentence_to_index`: a JSON
    string mapping each sentence's text (words joined by spaces) to its
    dataset's name; a blank line's dataset has no tokens ((L+1, 0, 2P) with
    `all`). The file is written under a temporary name and renamed at the
    end, so a failed run leaves no half file. Returns counts and seconds.
    """
    import h5py

    from engine.atomic import atomic_file

    count = tokens = blank = 0
    names: dict[str, str] = {}
    start = time.perf_counter()
    with atomic_file(Path(output)) as partial, h5py.File(partial, "w") as out:
        for indices, batch, vectors in embedded:
            for index, words, layers in zip(indices, batch, vectors):
                out.create_dataset(str(index), data=layers)
                names[" ".join(words)] = str(index)
            count += len(batch)
            tokens += sum(map(len, batch))
            blank += sum(1 for words in batch if not words)
            if progress is not None:
                progress(len(batch))
        out.create_dataset("sentence_to_index", data=[json.dumps(names, ensure_ascii=False)],
                           dtype=h5py.string_dtype())
    return {"sentences": count, "tokens": tokens, "blank_lines": blank, "seconds": time.perf_counter() - start}


def export_inference_model(exe, directory: str | Path, cfg: BiLMConfig, vocab: Vocabulary,
                           max_length: int | None = None, onnx: bool = False) -> str:
    """Saves the biLM forward (tokens + lengths → all ELMo layers) for `paddle.inference`.

    Inputs: `word_ids` [B,T] int64 (vocabulary ids, no boundaries) — for a
    character model `char_ids` [B,T,C] int64 (`reader.chars.padded_char_ids`)
    — and `lengths` [B] int64. Output `elmo_layers`: [B, L+1, T, 2·P] float32
    (see `bilm.model.encode`). Any T by default (the recurrence is a while
    loop); with `max_length` the inputs are always padded to that T and the
    recurrence is unrolled, which runs faster (`bilm.model.build_encoder`).
    `onnx`: also `elmo.onnx`, the same computation for ONNX Runtime. The
    variables come from the scope. Writes the model files beside the program;
    returns the path prefix.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    prefix = _save_encoder(exe, directory / INFERENCE_PREFIX, cfg, vocab, max_length)
    if onnx:
        # Converted from a program built for it (`portable`): the served Paddle
        # program keeps the loop Paddle runs faster.
        with tempfile.TemporaryDirectory() as tmp:
            export_onnx(_save_encoder(exe, Path(tmp, INFERENCE_PREFIX), cfg, vocab, max_length, portable=True),
                        f"{prefix}.onnx")
    write_model_files(directory, cfg, vocab)
    return prefix


def _save_encoder(exe, prefix: Path, cfg: BiLMConfig, vocab: Vocabulary, max_length: int | None,
                  portable: bool = False) -> str:
    program = paddle.static.Program()
    with paddle.static.program_guard(program, paddle.static.Program()):
        graph = build_encoder(cfg, vocab.bos_id, vocab.eos_id, max_length=max_length, portable=portable)
    return save_inference_program(prefix, list(graph.feeds.values()), {LAYERS_OUTPUT: graph.output.layers}, exe,
                                  program)


def token_table(exe, cfg: BiLMConfig, words: list[str], batch_size: int = 1024) -> np.ndarray:
    """A character model's token vectors [len(words), E] for a word list (its variables in the scope).

    With the model's LSTM weights this makes a word-level model that gives the
    same vectors for these words and is faster (bilm-tf's `dump_token_embeddings`).
    """
    program = paddle.static.Program()
    with paddle.static.program_guard(program, paddle.static.Program()):
        chars = paddle.static.data("char_ids", [-1, cfg.char_cnn.max_characters], "int64")
        vectors = embed_tokens(create_params(cfg, with_softmax=False), cfg, chars)
    rows = [exe.run(program, feed={"char_ids": char_ids(words[i:i + batch_size], cfg.char_cnn.max_characters)},
                    fetch_list=[vectors])[0] for i in range(0, len(words), batch_size)]
    return np.concatenate(rows) if rows else np.zeros((0, cfg.embed_size), np.float32)
