"""ELMo pretraining as an engine job: its config, corpus, LM graph, dev perplexity and export.

`sh run.sh` (`configs/elmo.yaml`, `job: bilm.pretrain.ElmoPretraining`) runs it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bilm.config import BiLMConfig
from bilm.formats import load_model_config, write_model_dir, write_model_files
from bilm.lm import PerplexityEvaluator, build_lm, zero_states
from bilm.model import INIT_CELL, INIT_HIDDEN
from bilm.vectors import export_inference_model
from engine.config import section
from engine.errors import ConfigError, DataError
from engine.job import Carry, Job, TrainGraph
from engine.optim import OptimConfig
from engine.runtime import DistEnv, RuntimeConfig
from engine.trainer import TrainConfig
from reader.default_corpus import build_default_corpus
from reader.lm import LMStream, RankRows
from reader.prefetch import Prefetcher
from reader.sampling import NegativeSampling
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

    def __init__(self, cfg: ElmoConfig, dist: DistEnv = DistEnv()):
        self.cfg = cfg
        self.dist = dist
        self.files = resolve_corpus(cfg)
        self.vocab = Vocabulary.load(self.files.vocab)
        self.model: BiLMConfig = cfg.model.with_vocab_size(len(self.vocab))
        self._evaluator: PerplexityEvaluator | None = None

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

    def train_batches(self, reader_state: dict | None):
        B = self.cfg.train.batch_size
        transforms: list = [RankRows(self.dist.rank, B)]
        if self.model.softmax == "sampled":
            transforms.append(NegativeSampling(self.model.vocab_size, self.model.num_samples,
                                               self.cfg.train.seed))
        stream = LMStream(self.files.train, str(self.files.vocab), B * self.dist.world,
                          self.cfg.data.num_steps, shuffle=self.cfg.data.shuffle,
                          seed=self.cfg.train.seed, loop=True, num_workers=self.cfg.data.num_workers,
                          transforms=tuple(transforms), max_chars=self.model.spelled_chars)
        return Prefetcher(stream, reader_state, capacity=self.cfg.data.prefetch)

    def step_metrics(self, loss: float) -> dict[str, float]:
        # With the sampled softmax this flatters: evaluations use the full one.
        return {"ppl": math.exp(min(loss, 50.0))}

    def evaluate(self, exe) -> dict[str, float]:
        if self._evaluator is None:  # built on first use, after the training program
            self._evaluator = PerplexityEvaluator(self.model, self.files.dev, self.vocab,
                                                  self.cfg.train.batch_size, self.cfg.data.num_steps)
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

    def export(self, exe, output_dir: Path, onnx: bool = False) -> dict[str, str]:
        model_dir = write_model_dir(Path(output_dir, "model"), self.model, self.vocab)
        prefix = export_inference_model(exe, Path(output_dir, "inference"), self.model, self.vocab, onnx=onnx)
        written = {"exported model": str(model_dir), "exported inference program": f"{prefix}.json"}
        if onnx:
            written["exported ONNX program"] = f"{prefix}.onnx"
        return written
