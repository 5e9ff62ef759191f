"""ELMo pretraining as an engine job: data, LM graph, dev perplexity, export."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bilm.config import BiLMConfig, load_model_config
from bilm.evaluation import PerplexityEvaluator
from bilm.lm import INIT_CELL, INIT_HIDDEN, build_lm, zero_states
from bilm.model_dir import export_inference_model, write_model_dir, write_model_files
from bilm.pretrain_config import ElmoConfig
from engine.errors import ConfigError, DataError
from engine.job import Carry, Job, TrainGraph
from engine.runtime import DistEnv
from engine.weight_products import WeightProducts
from reader.default_corpus import build_default_corpus
from reader.lm import LMStream, RankRows
from reader.prefetch import Prefetcher
from reader.sampling import NegativeSampling
from reader.shards import resolve_shards
from reader.vocab import Vocabulary


@dataclasses.dataclass(frozen=True)
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

    def __init__(self, cfg: ElmoConfig, dist: DistEnv = DistEnv()):
        self.cfg = cfg
        self.dist = dist
        self.files = resolve_corpus(cfg)
        self.vocab = Vocabulary.load(self.files.vocab)
        self.model: BiLMConfig = cfg.model.with_vocab_size(len(self.vocab))
        self._evaluator: PerplexityEvaluator | None = None

    # -- engine interface --------------------------------------------------------

    def build_train_graph(self) -> TrainGraph:
        B, T = self.cfg.train.batch_size, self.cfg.data.num_steps
        products = WeightProducts()
        g = build_lm(self.model, B, T, training=True, bos_id=self.vocab.bos_id, eos_id=self.vocab.eos_id,
                     products=products)
        zeros = zero_states(self.model, B)
        return TrainGraph(
            feeds=g.feeds,
            loss=g.loss,
            # As the fluid release: the mean token loss scaled by the unroll length.
            objective=g.loss * float(T),
            carry=[Carry(INIT_HIDDEN, g.last_hidden, zeros[INIT_HIDDEN], batch_axis=1),
                   Carry(INIT_CELL, g.last_cell, zeros[INIT_CELL], batch_axis=1)],
            report_perplexity=True,
            row_gathers=g.row_gathers,
            weight_products=products,
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

    def evaluate(self, exe) -> dict[str, float]:
        if self._evaluator is None:  # built on first use, after the training program
            self._evaluator = PerplexityEvaluator(self.model, self.files.dev, self.vocab,
                                                  self.cfg.train.batch_size, self.cfg.data.num_steps)
        return self._evaluator.run(exe)

    def describe_metrics(self, m: dict[str, float]) -> str:
        return (f"dev ppl {m['ppl']:.2f} (fw {m['ppl_fw']:.2f}, bw {m['ppl_bw']:.2f}) | "
                f"unigram ppl {m['unigram_ppl']:.2f} | {int(m['tokens']):,} tokens")

    def check_checkpoint(self, directory: Path) -> None:
        saved = load_model_config(directory)
        if saved != self.model:
            diff = [f"{f.name}: {getattr(saved, f.name)!r} there, {getattr(self.model, f.name)!r} here"
                    for f in dataclasses.fields(saved) if getattr(saved, f.name) != getattr(self.model, f.name)]
            raise ConfigError(f"{directory} was written for another model ({'; '.join(diff)})")

    def write_model_files(self, directory: Path) -> None:
        write_model_files(directory, self.model, self.vocab)

    def export(self, exe, output_dir: Path) -> dict[str, str]:
        model_dir = write_model_dir(Path(output_dir, "model"), self.model, self.vocab)
        prefix = export_inference_model(exe, Path(output_dir, "inference"), self.model, self.vocab)
        return {"model": str(model_dir), "inference program": f"{prefix}.json"}
