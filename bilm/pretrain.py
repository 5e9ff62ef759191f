"""ELMo pretraining as an engine job: its config, corpus, LM graph, dev perplexity and export.

`sh run.sh` (`configs/elmo.yaml`, `job: bilm.pretrain.ElmoPretraining`) runs it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bilm.config import BiLMConfig
from bilm.embedder import check_sentences, export_inference_model, layer_check
from bilm.formats import (
    CHARACTERS_FILE,
    VOCAB_FILE,
    load_model_config,
    read_characters,
    write_model_dir,
    write_model_files,
)
from bilm.lm import PerplexityEvaluator, build_lm
from bilm.model import (
    EMBEDDING,
    INIT_CELL,
    INIT_HIDDEN,
    SOFTMAX_BIAS,
    SOFTMAX_WEIGHT,
    spelling,
    variable_shapes,
    zero_states,
)
from engine.config import section
from engine.errors import CheckpointError, ConfigError, DataError
from engine.inference import lower_precision
from engine.job import Carry, ExportSettings, Job, TrainGraph
from engine.optim import OptimConfig
from engine.precision import describe
from engine.runtime import DistEnv, RuntimeConfig
from engine.trainer import TrainConfig
from engine.variables import get_value, persistable_shapes, read_tensor, read_tensor_header, set_value
from reader.default_corpus import build_default_corpus
from reader.lm import LMStream, RankRows
from reader.prefetch import Prefetcher
from reader.sampling import NegativeSampling
from reader.segment import Segmenter
from reader.shards import resolve_shards
from reader.vocab import Vocabulary


@dataclass
class LMDataConfig:
    """The `data:` section: corpus, vocabulary and batching."""

    # builtin: build the built-in corpus (English prose from the Python installation's own
    # documentation, no download) into `builtin_dir`; files: use the globs below
    source: Literal["builtin", "files"] = "files"
    builtin_dir: str = "output/corpus"  # where the built-in corpus is built
    train: str = ""  # glob of training shards (one tokenized sentence per line)
    dev: str = ""  # glob of dev shards
    vocab: str = ""  # one token per line, with <S>, </S>, <UNK>; sorted by descending frequency
    # model.char_cnn.spelling characters: the character vocabulary (a model directory's characters.json);
    # empty: train.init_from's
    characters: str = ""
    # How a line becomes words: none (whitespace: pre-segmented text), vocab (forward maximum
    # matching over the vocabulary, for raw Chinese text), jieba (the jieba extra)
    segment: Literal["none", "vocab", "jieba"] = "none"
    num_steps: int = 20  # unroll length (truncated BPTT window)
    shuffle: bool = True  # reshuffle shard order and sentence order every pass (seeded)
    num_workers: int = 1  # processes that encode upcoming shards (0: encode in the reader process)
    prefetch: int = 32  # batches kept ready ahead of the executor

    def __post_init__(self):
        if self.num_steps <= 0:
            raise ValueError(f"num_steps must be positive, got {self.num_steps}")


@dataclass
class ElmoConfig:
    """A whole pretraining run; the defaults are the fluid release's recipe."""

    data: LMDataConfig = section(LMDataConfig)
    model: BiLMConfig = section(BiLMConfig)
    train: TrainConfig = section(TrainConfig, output_dir="output/elmo", batch_size=128, max_steps=140000,
                                 eval_every=10000, save_every=10000)
    optim: OptimConfig = section(OptimConfig, name="adagrad", learning_rate=0.2, initial_accumulator_value=1.0,
                                 epsilon=0.0, grad_clip=10.0)
    runtime: RuntimeConfig = section(RuntimeConfig)


@dataclass(frozen=True)
class CorpusFiles:
    """The resolved inputs of a run."""

    train: tuple[str, ...]
    dev: tuple[str, ...]
    vocab: Path


def resolve_corpus(cfg: ElmoConfig) -> CorpusFiles:
    """The shard lists and vocabulary of a run (building the built-in corpus if asked)."""
    data = cfg.data
    if data.source == "builtin":
        try:
            corpus = build_default_corpus(Path(data.builtin_dir))
        except FileExistsError as exc:
            raise DataError(f"data.builtin_dir: {exc}") from None
        train, dev, vocab = corpus.train_glob, corpus.dev_glob, corpus.vocab
    else:
        train, dev, vocab = data.train, data.dev, data.vocab
    return CorpusFiles(tuple(resolve_shards(train, "training")), tuple(resolve_shards(dev, "dev")),
                       Path(vocab))


class ElmoPretraining(Job):
    """Bidirectional LM pretraining (the fluid ELMo recipe) on the shared engine."""

    config_class = ElmoConfig
    starts_from_init = True
    export_precisions = ("fp32", "int8", "bf16")

    def __init__(self, cfg: ElmoConfig, dist: DistEnv = DistEnv()):
        self.cfg = cfg
        self.dist = dist
        self.files = resolve_corpus(cfg)
        characters = self._characters()
        self.vocab = Vocabulary.load(self.files.vocab, characters)
        self.model: BiLMConfig = cfg.model.with_vocab_size(len(self.vocab)).with_characters(characters)
        self._evaluator: PerplexityEvaluator | None = None
        Segmenter(cfg.data.segment)  # segment: jieba without jieba stops here, not in the reader

    def _characters(self) -> tuple[str, ...]:
        model, data, init = self.cfg.model, self.cfg.data, self.cfg.train.init_from
        if not model.spells or model.char_cnn.spelling != "characters":
            if data.characters:
                raise ConfigError("data.characters is set but model.char_cnn.spelling is not 'characters'")
            return ()
        source = data.characters or init
        if not source or not Path(source).exists():
            raise ConfigError("model.char_cnn.spelling 'characters' needs a character vocabulary: data.characters "
                              "(a characters.json) or train.init_from (a model that has one)")
        characters = read_characters(source)
        if not characters:
            raise ConfigError(f"{source} has no character vocabulary ({CHARACTERS_FILE})")
        return characters

    def summary(self) -> str:
        m, cfg = self.model, self.cfg
        softmax = f"{m.softmax} softmax" + (f" ({m.num_samples} samples)" if m.softmax == "sampled" else "")
        return (f"biLM: vocab {m.vocab_size:,}, embed/proj {m.embed_size}, hidden {m.hidden_size}, "
                f"{m.num_layers} layers, {softmax} | batch {cfg.train.batch_size}×{self.dist.world} ranks, "
                f"{cfg.data.num_steps} steps | {len(self.files.train)} train / {len(self.files.dev)} dev shards | "
                f"{cfg.runtime.threads or 'all'} threads")

    def build_train_graph(self) -> TrainGraph:
        B, T = self.cfg.train.batch_size, self.cfg.data.num_steps
        g = build_lm(self.model, B, T, training=True, bos_id=self.vocab.bos_id, eos_id=self.vocab.eos_id)
        zeros = zero_states(self.model, B)
        return TrainGraph(
            feeds=g.feeds,
            loss=g.loss,
            # As the fluid release: the mean token loss scaled by the unroll length.
            objective=g.loss * float(T),
            carry=[Carry(INIT_HIDDEN, g.last_hidden, zeros[INIT_HIDDEN], batch_axis=1),
                   Carry(INIT_CELL, g.last_cell, zeros[INIT_CELL], batch_axis=1)],
            gradient_sources=g.gradient_sources,
        )

    def initialize(self, exe, program) -> list[str]:
        """`train.init_from`: the biLM's variables (and, with `train.init_optimizer`, Adagrad's state)
        from another model; a checkpoint of this run restored afterwards overrides them."""
        t = self.cfg.train
        if not t.init_from:
            return []
        return init_from(Path(t.init_from), self.model, self.vocab, program, exe.place, t.init_optimizer)

    def train_batches(self, reader_state: dict | None):
        B = self.cfg.train.batch_size
        transforms: list = [RankRows(self.dist.rank, B)]
        if self.model.softmax == "sampled":
            transforms.append(NegativeSampling(self.model.vocab_size, self.model.num_samples,
                                               self.cfg.train.seed))
        stream = LMStream(self.files.train, str(self.files.vocab), B * self.dist.world,
                          self.cfg.data.num_steps, shuffle=self.cfg.data.shuffle,
                          seed=self.cfg.train.seed, loop=True, num_workers=self.cfg.data.num_workers,
                          transforms=tuple(transforms), spelling=spelling(self.model, self.vocab),
                          segment=self.cfg.data.segment)
        return Prefetcher(stream, reader_state, capacity=self.cfg.data.prefetch)

    def step_metrics(self, loss: float) -> dict[str, float]:
        # With the sampled softmax this flatters: evaluations use the full one.
        return {"ppl": math.exp(min(loss, 50.0))}

    def evaluate(self, exe) -> dict[str, float]:
        if self._evaluator is None:  # built on first use, after the training program
            self._evaluator = PerplexityEvaluator(self.model, self.files.dev, self.vocab,
                                                  self.cfg.train.batch_size, self.cfg.data.num_steps,
                                                  segment=self.cfg.data.segment)
        return self._evaluator.run(exe)

    def describe_metrics(self, m: dict[str, float]) -> str:
        skipped = "".join(f" | {note}" for note in (self._evaluator.notes if self._evaluator else []))
        return (f"dev ppl {m['ppl']:.2f} (fw {m['ppl_fw']:.2f}, bw {m['ppl_bw']:.2f}) | "
                f"unigram ppl {m['unigram_ppl']:.2f} | {int(m['tokens']):,} tokens{skipped}")

    def check_checkpoint(self, directory: Path) -> None:
        saved = load_model_config(directory)
        if saved != self.model:
            diff = [f"{f.name}: {getattr(saved, f.name)!r} there, {getattr(self.model, f.name)!r} here"
                    for f in dataclasses.fields(saved) if getattr(saved, f.name) != getattr(self.model, f.name)]
            raise ConfigError(f"{directory} was written for another model ({'; '.join(diff)})")

    def write_model_files(self, directory: Path) -> None:
        write_model_files(directory, self.model, self.vocab)

    def export(self, exe, output_dir: Path, settings: ExportSettings = ExportSettings()) -> dict[str, str]:
        model_dir = write_model_dir(Path(output_dir, "model"), self.model, self.vocab)
        onnx = settings.onnx or settings.precision == "int8"  # int8 is the ONNX program quantized
        prefix = export_inference_model(exe, Path(output_dir, "inference"), self.model, self.vocab, onnx=onnx)
        written = {"exported model": str(model_dir), "exported inference program": f"{prefix}.json"}
        if onnx:
            written["exported ONNX program"] = f"{prefix}.onnx"
        if settings.precision != "fp32":  # measured on the dev corpus
            measure = layer_check(self.model, self.vocab, check_sentences(self.files.dev, split=Segmenter(
                self.cfg.data.segment, self.vocab.tokens if self.cfg.data.segment != "none" else ())))
            record = lower_precision(prefix, settings.precision, measure, settings.floor,
                                     threads=self.cfg.runtime.threads or os.cpu_count() or 1)
            written[f"exported {record.precision} program"] = str(Path(prefix).parent / record.file)
            written[f"{record.precision} check"] = describe(record.check)
        return written


# -- starting from another model --------------------------------------------------------------

# Variables with one row per vocabulary entry: copied word by word when the vocabularies differ.
_ROWS_BY_WORD = (EMBEDDING, SOFTMAX_WEIGHT, SOFTMAX_BIAS)
_MOMENT = "_moment_0"
# Settings that change the computation without changing any shape: a difference is worth a note.
_SAME_SHAPE_SETTINGS = ("cell_clip", "proj_clip", "forget_bias", "state_reset", "use_skip_connections")


def init_from(source: Path, cfg: BiLMConfig, vocab: Vocabulary, program, place,
              with_optimizer: bool = False) -> list[str]:
    """Sets the new run's biLM variables from `source`: a model or checkpoint directory of this
    project, an imported bilm-tf model, or a fluid-release checkpoint (variable files only; its
    vocabulary must then be this run's). Shapes are checked against the run's config (an error names
    the variable and both shapes); a missing softmax stays freshly initialised; with another
    vocabulary, the rows of words both have are copied by word. Returns lines for the log."""
    if not source.is_dir():
        raise ConfigError(f"train.init_from: {source} is not a directory")
    source_vocab = _source_vocabulary(source, vocab)
    same_vocab = source_vocab.tokens == vocab.tokens
    notes = [f"initialised from {source}", *_setting_notes(source, cfg)]
    for name, shape in variable_shapes(cfg, with_softmax=True).items():
        if not Path(source, name).is_file():
            if name in (SOFTMAX_WEIGHT, SOFTMAX_BIAS):
                notes.append(f"note: {source} has no {name}: it starts freshly initialised")
                continue
            raise CheckpointError(f"train.init_from: {source} has no '{name}' (this run's model needs {list(shape)})")
        value = read_tensor(Path(source, name))
        if name in _ROWS_BY_WORD and not same_vocab:
            value, copied = _rows_by_word(name, value, source_vocab, vocab, get_value(name))
            notes.append(f"{name}: {copied:,} rows copied by word, {len(vocab) - copied:,} new")
        elif tuple(value.shape) != shape:
            raise CheckpointError(f"train.init_from: '{name}' has shape {list(value.shape)} in {source} but "
                                  f"{list(shape)} in this run's model")
        set_value(name, value, place)
    if with_optimizer:
        notes.append(_load_optimizer_state(source, cfg, program, place, same_vocab))
    return notes


def _source_vocabulary(source: Path, vocab: Vocabulary) -> Vocabulary:
    if Path(source, VOCAB_FILE).is_file():
        return Vocabulary.load(Path(source, VOCAB_FILE))
    # A fluid-release directory has no vocabulary of its own: it must be this run's.
    rows = read_tensor_header(Path(source, EMBEDDING))[1][0] if Path(source, EMBEDDING).is_file() else None
    if rows != len(vocab):
        raise ConfigError(f"train.init_from: {source} has no {VOCAB_FILE}, and its {EMBEDDING} rows ({rows}) are "
                          f"not this run's {len(vocab):,} words; import it with `python -m bilm import-fluid "
                          "--vocab ITS_VOCABULARY` and start from the import")
    return vocab


def _setting_notes(source: Path, cfg: BiLMConfig) -> list[str]:
    if not Path(source, "model.json").is_file():
        return []
    theirs = load_model_config(source)
    return [f"note: {source} was trained with model.{k} {getattr(theirs, k)!r}; this run uses {getattr(cfg, k)!r}"
            for k in _SAME_SHAPE_SETTINGS if getattr(theirs, k) != getattr(cfg, k)]


def _rows_by_word(name: str, value, source_vocab: Vocabulary, vocab: Vocabulary, fresh):
    """`fresh` (this run's initial rows) with the rows of the words both vocabularies have taken from
    `value`; returns (rows, how many were copied)."""
    if value.shape[0] != len(source_vocab) or value.shape[1:] != fresh.shape[1:]:
        raise CheckpointError(f"train.init_from: '{name}' has shape {list(value.shape)} but its vocabulary has "
                              f"{len(source_vocab):,} entries and this run's model needs rows of "
                              f"{list(fresh.shape[1:])}")
    index = {word: i for i, word in enumerate(source_vocab.tokens)}
    rows, copied = fresh.copy(), 0
    for i, word in enumerate(vocab.tokens):
        if word in index:
            rows[i] = value[index[word]]
            copied += 1
    return rows, copied


def _load_optimizer_state(source: Path, cfg: BiLMConfig, program, place, same_vocab: bool) -> str:
    if not same_vocab:
        return "note: train.init_optimizer: the vocabularies differ, so the optimizer state starts fresh"
    params = variable_shapes(cfg, with_softmax=True)
    # Adagrad's accumulators, under Paddle's (and the fluid release's) names.
    state = {name: shape for name, shape in persistable_shapes(program).items()
             if name.endswith(_MOMENT) and name.removesuffix(_MOMENT) in params}
    loaded = [name for name, shape in state.items()
              if Path(source, name).is_file() and read_tensor_header(Path(source, name))[1] == shape]
    for name in loaded:
        set_value(name, read_tensor(Path(source, name)), place)
    return f"optimizer state: {len(loaded)} of {len(state)} accumulators from {source}"
