"""ELMo vectors outside a network: from Python, in HDF5 files, as an inference program.

`ElmoEmbedder` (sentences → layers, Paddle hidden), `dump_file` (a text file
→ HDF5, bilm-tf's `dump_bilm_embeddings`), `export_inference_model` (a
program for `paddle.inference`, and for ONNX Runtime), `token_table` (a
character model's vectors for a word list, bilm-tf's
`dump_token_embeddings`). Nothing here imports the language model's loss or
the training reader.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import paddle

from bilm.config import BiLMConfig
from bilm.formats import load_model_variables, read_model_dir, write_model_files
from bilm.model import (
    INIT_CELL,
    INIT_HIDDEN,
    LENGTHS,
    build_encoder,
    create_params,
    embed_tokens,
    token_feed_name,
    token_ids,
    token_width,
    zero_states,
)
from engine.errors import ConfigError
from engine.inference import InferenceProgram, export_onnx, save_inference_program
from engine.precision import OutputCheck
from reader.vocab import Vocabulary

INFERENCE_PREFIX, LAYERS_OUTPUT = "elmo", "elmo_layers"
EXPORT_RECORD = "elmo_export.json"  # how the program was exported: {"max_length": T or null}
FINAL_HIDDEN, FINAL_CELL = "final_hidden", "final_cell"  # a stateful program's carried state


class ElmoEmbedder:
    """ELMo vectors from Python, from a model directory: no program, place or session to manage.

        from bilm import ElmoEmbedder

        elmo = ElmoEmbedder("output/elmo/model")
        layers = elmo.embed_sentences(["the list is sorted .", "return none ."])   # [(3, 5, 256), (3, 3, 256)]

    A sentence is a string (split on whitespace, or cut into the model's
    vocabulary words with `segment="vocab"` / `"jieba"` for raw Chinese text)
    or a list of tokens. Word models look words up in the model's vocabulary
    (unknown words become `<UNK>`); character models spell every word, so
    none is unknown. Each sentence's layers are (L+1, n_tokens, 2P): the token
    layer `[e ; e]`, then each LSTM layer `[forward ; backward]`, as bilm-tf
    and AllenNLP lay them out (`layers="top"` or `"mix"` for one layer).

    The biLM is exported once and run by `paddle.inference` or, with
    `backend="onnxruntime"` (the default `auto` picks it when the `onnx`
    extra is installed), by ONNX Runtime. Stateless (the default) starts
    every sentence from a zero LSTM state, so a sentence always gets the same
    vectors. `stateful=True` reproduces bilm-tf: row i of each batch starts
    from the final state of row i of the previous batch (rows beyond a
    smaller batch keep theirs).
    """

    def __init__(self, model_dir: str | Path, stateful: bool = False, max_batch_size: int = 64,
                 backend: str = "auto", threads: int = 2, segment: str = "none"):
        """`backend`: auto, paddle or onnxruntime; `threads`: CPU threads; `segment`: how a string becomes
        words (none: on whitespace; vocab or jieba: raw text cut into the model's words)."""
        from engine.inference import fastest_backend
        from reader.segment import Segmenter

        self.cfg, self.vocab = read_model_dir(model_dir)
        self.stateful = stateful
        self.max_batch_size = max_batch_size
        self.split = Segmenter(segment, self.vocab.tokens if segment != "none" else ())
        self.max_length = None  # a fixed-length export's T
        if is_export(model_dir):  # its program as exported, at the precision it records
            if stateful:
                raise ConfigError(f"{model_dir} is an export, whose program carries no state: stateful embedding "
                                  "needs the model directory")
            self.max_length = read_export_record(model_dir).get("max_length")
            self._program = InferenceProgram(Path(model_dir, INFERENCE_PREFIX), threads, backend=backend)
        else:
            backend = fastest_backend() if backend == "auto" else backend
            self._program = _embedding_program(model_dir, self.cfg, self.vocab, stateful, backend, threads)
        self.backend = self._program.backend
        self.state = zero_states(self.cfg, max_batch_size) if stateful else None

    def embed_sentences(self, sentences: list, layers: str | int = "all") -> list[np.ndarray]:
        """Each sentence's layers, unpadded: (L+1, n_tokens, 2P) with `layers="all"`, (n_tokens, 2P) for
        the `top` layer or the average of all (`mix`); ELMoForManyLangs' `output_layer` numbers work too
        (-2 all, -1 the average, k one layer: its `sents2elmo(sents, output_layer=k)`). Runs
        `max_batch_size` sentences at a time."""
        layers = self._layers(layers)
        tokens = [self.tokens(s) for s in sentences]
        out = []
        for first in range(0, len(tokens), self.max_batch_size):
            batch = tokens[first:first + self.max_batch_size]
            vectors = self.embed(batch)
            out += [select_layers(vectors[i, :, : len(words)], layers) for i, words in enumerate(batch)]
        return out

    def embed_sentence(self, sentence, layers: str | int = "all") -> np.ndarray:
        """One sentence's layers (see `embed_sentences`)."""
        return self.embed_sentences([sentence], layers)[0]

    def _layers(self, layers: str | int) -> str | int:
        mode = layer_mode(layers)
        if isinstance(mode, int) and mode > self.cfg.num_layers:
            raise ConfigError(f"layer {mode}: the model has layers 0 (tokens) to {self.cfg.num_layers}")
        return mode

    def tokens(self, sentence) -> list[str]:
        """A sentence's tokens: a string is split (or segmented), a list is taken as it is."""
        return self.split(sentence) if isinstance(sentence, str) else list(sentence)

    def embed(self, sentences: list) -> np.ndarray:
        """Layers for a batch of sentences, padded to the longest: [n, L+1, T, 2P] float32."""
        sentences = [self.tokens(s) for s in sentences]
        n = len(sentences)
        if n == 0:
            return np.zeros((0, self.cfg.num_layers + 1, 0, 2 * self.cfg.embed_size), np.float32)
        lengths = np.array([len(s) for s in sentences], np.int64)
        feed = {token_feed_name(self.cfg): self.token_ids(sentences), LENGTHS: lengths}
        if not self.stateful:
            return self._program.run(feed)[LAYERS_OUTPUT]
        self._grow_state(n)
        feed.update({name: value[:, :n] for name, value in self.state.items()})
        out = self._program.run(feed)
        self.state[INIT_HIDDEN][:, :n] = out[FINAL_HIDDEN]
        self.state[INIT_CELL][:, :n] = out[FINAL_CELL]
        return out[LAYERS_OUTPUT]

    def token_ids(self, sentences: list[list[str]]) -> np.ndarray:
        """The token feed for padded sentences: word ids [n,T], or character ids [n,T,C]."""
        return padded_ids(token_ids(sentences, self.cfg, self.vocab), self.max_length)

    def describe(self) -> str:
        """What runs the biLM: `int8, onnxruntime, cpu`."""
        return self._program.describe()

    def _grow_state(self, rows: int) -> None:
        have = self.state[INIT_HIDDEN].shape[1]
        if rows > have:
            extra = zero_states(self.cfg, rows - have)
            self.state = {k: np.concatenate([v, extra[k]], axis=1) for k, v in self.state.items()}


def _embedding_program(model_dir, cfg: BiLMConfig, vocab: Vocabulary, stateful: bool, backend: str,
                       threads: int) -> InferenceProgram:
    """The biLM's forward with its variables, exported into a scratch directory and loaded to run."""
    from engine.runtime import set_threads, static_mode

    set_threads(threads)
    with static_mode(), paddle.static.scope_guard(paddle.static.Scope()), tempfile.TemporaryDirectory() as tmp:
        program = paddle.static.Program()
        with paddle.static.program_guard(program, paddle.static.Program()):
            graph = build_encoder(cfg, vocab.bos_id, vocab.eos_id, stateful, portable=backend == "onnxruntime")
        outputs = {LAYERS_OUTPUT: graph.output.layers}
        if stateful:
            outputs.update({FINAL_HIDDEN: graph.output.final_hidden, FINAL_CELL: graph.output.final_cell})
        place = paddle.CPUPlace()
        load_model_variables(model_dir, cfg, place, with_softmax=False)
        prefix = save_inference_program(Path(tmp, INFERENCE_PREFIX), list(graph.feeds.values()), outputs,
                                        paddle.static.Executor(place), program, onnx=backend == "onnxruntime")
        return InferenceProgram(prefix, threads, backend=backend)


LAYER_MODES = ("all", "top", "mix")


def select_layers(layers: np.ndarray, mode: str | int) -> np.ndarray:
    """One sentence's (L+1, n, 2P) layers → `all` of them, the `top` one, their average (`mix`), or
    ELMoForManyLangs' `output_layer` numbers: -2 all, -1 the average, k ≥ 0 layer k alone (0: `[e ; e]`)."""
    mode = layer_mode(mode)
    if mode == "top":
        return layers[-1]
    if mode == "mix":
        return layers.mean(axis=0)
    if isinstance(mode, int):
        return layers[mode]
    return layers


def layer_mode(value: str | int) -> str | int:
    """A `layers` choice, checked: a name of `LAYER_MODES` or an `output_layer` number (-2 → all,
    -1 → mix, k ≥ 0 that layer, checked against the model when it is used)."""
    if value in LAYER_MODES:
        return value
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number < -2:
        raise ConfigError(f"layers must be one of {', '.join(LAYER_MODES)} or an ELMoForManyLangs output_layer "
                          f"(-2 all, -1 the average, 0, 1, …: one layer), got {value!r}")
    return {-2: "all", -1: "mix"}.get(number, number)


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
    global _worker_embedder
    _worker_embedder = ElmoEmbedder(model_dir, backend=backend, threads=threads)


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
    # h5py over a Python file: a failed write (a full disk) is then an OSError like any other, where
    # HDF5's own file driver reports it only while tearing down, and can crash the process.
    with atomic_file(Path(output)) as partial, open(partial, "wb+") as raw, h5py.File(raw, "w") as out:
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
    character model `char_ids` [B,T,C], for word+char input `word_char_ids`
    [B,T,1+C] (`bilm.model.token_ids` makes each) — and `lengths` [B] int64.
    Output `elmo_layers`: [B, L+1, T, 2·P] float32 (see `bilm.model.encode`).
    Any T by default (the recurrence is a while loop); with `max_length` the inputs are always padded to that T and the
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
    (directory / EXPORT_RECORD).write_text(json.dumps({"max_length": max_length}) + "\n")
    return prefix


def is_export(directory: str | Path) -> bool:
    """Whether `directory` is a biLM export (`export_inference_model`) rather than a model directory."""
    return Path(directory, f"{INFERENCE_PREFIX}.json").is_file()


def read_export_record(directory: str | Path) -> dict:
    """The export's record (exports made before it had one are of any length)."""
    path = Path(directory, EXPORT_RECORD)
    return json.loads(path.read_text()) if path.is_file() else {"max_length": None}


def check_sentences(paths, limit: int = 256, max_words: int = 64, split=str.split) -> list[list[str]]:
    """Up to `limit` non-blank sentences of text files (one per line), each cut to `max_words`: the check
    set a lower-precision export is measured on."""
    from reader.sentences import read_batches

    sentences = []
    for path in paths:
        for _, batch in read_batches(path, 64, split):
            sentences += [words[:max_words] for words in batch if words]
            if len(sentences) >= limit:
                return sentences[:limit]
    if not sentences:
        raise ConfigError(f"no sentence to check the export on in {', '.join(map(str, paths))}")
    return sentences


def padded_ids(ids: np.ndarray, max_length: int | None) -> np.ndarray:
    """Token ids [n,T,…] padded to a fixed-length export's T (`max_length`; None: as they are)."""
    if max_length is None:
        return ids
    if ids.shape[1] > max_length:
        raise ConfigError(f"a sentence of {ids.shape[1]} words is longer than this export's fixed length "
                          f"({max_length}, its --max-length)")
    return np.pad(ids, [(0, 0), (0, max_length - ids.shape[1])] + [(0, 0)] * (ids.ndim - 2))


def layer_check(cfg: BiLMConfig, vocab: Vocabulary, sentences: list[list[str]], batch_size: int = 32,
                max_length: int | None = None):
    """A `measure(reference, candidate)` for `engine.inference.lower_precision`: both programs embed
    `sentences`, and each ELMo layer's vectors at the real tokens are compared (`OutputCheck`: max |Δ|,
    mean cosine; the floor applies to each layer). `max_length`: a fixed-length export's T, which the
    sentences are padded to (and must not exceed)."""

    def measure(reference, candidate) -> dict:
        check = OutputCheck()
        for first in range(0, len(sentences), batch_size):
            batch = sentences[first:first + batch_size]
            lengths = np.array([len(words) for words in batch], np.int64)
            feed = {token_feed_name(cfg): padded_ids(token_ids(batch, cfg, vocab), max_length), LENGTHS: lengths}
            want, got = reference.run(feed)[LAYERS_OUTPUT], candidate.run(feed)[LAYERS_OUTPUT]
            real = np.arange(want.shape[2])[None, :] < lengths[:, None]  # [B, T]
            check.add({f"layer_{k}": want[:, k][real] for k in range(want.shape[1])},
                      {f"layer_{k}": got[:, k][real] for k in range(got.shape[1])})
        return {"outputs": check.summary(), "sentences": len(sentences)}

    return measure


def _save_encoder(exe, prefix: Path, cfg: BiLMConfig, vocab: Vocabulary, max_length: int | None,
                  portable: bool = False) -> str:
    program = paddle.static.Program()
    with paddle.static.program_guard(program, paddle.static.Program()):
        graph = build_encoder(cfg, vocab.bos_id, vocab.eos_id, max_length=max_length, portable=portable)
    return save_inference_program(prefix, list(graph.feeds.values()), {LAYERS_OUTPUT: graph.output.layers}, exe,
                                  program)


def token_table(exe, cfg: BiLMConfig, vocab: Vocabulary, words: list[str], batch_size: int = 1024) -> np.ndarray:
    """A character (or word+char) model's token vectors [len(words), E] for a word list (its variables in
    the scope; `vocab` is the model's).

    With the model's LSTM weights this makes a word-level model that gives the
    same vectors for these words and is faster (bilm-tf's `dump_token_embeddings`).
    """
    program = paddle.static.Program()
    with paddle.static.program_guard(program, paddle.static.Program()):
        tokens = paddle.static.data("tokens", [-1, *token_width(cfg)], "int64")
        vectors = embed_tokens(create_params(cfg, with_softmax=False), cfg, tokens)
    rows = [exe.run(program, feed={"tokens": token_ids([words[i:i + batch_size]], cfg, vocab)[0]},
                    fetch_list=[vectors])[0] for i in range(0, len(words), batch_size)]
    return np.concatenate(rows) if rows else np.zeros((0, cfg.embed_size), np.float32)
