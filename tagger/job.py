"""The tagger as an engine job: its config, data, graph, chunk F1 on dev, export for serving.

`sh run.sh lac` (`configs/lac.yaml`, `job: tagger.job.TaggerTraining`) runs it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import paddle

import bilm
from bilm.model import spelling as bilm_spelling
from engine.config import check_files, section, write_json
from engine.errors import ConfigError
from engine.inference import save_inference_program
from engine.job import ExportSettings, Job, TrainGraph
from engine.optim import OptimConfig
from engine.runtime import DistEnv, RuntimeConfig
from engine.trainer import TrainConfig
from reader.chunks import ChunkCounter, allowed_transitions, follows_iob2
from reader.prefetch import Prefetcher
from reader.tagging import ELMO_IDS, LENGTHS, TAGS, WORD_IDS, TaggingStream, TagSet, build_word_vocab, read_tagged
from tagger.model import (
    ELMO_CHARACTERS_FILE,
    ELMO_VOCAB_FILE,
    INFERENCE_PREFIX,
    TAGGER_FILE,
    TAGS_FILE,
    TAGS_OUTPUT,
    WORDS_FILE,
    TaggerConfig,
    build_tagger,
)


@dataclass
class TaggingDataConfig:
    """The `data:` section: tagged files (`words<TAB>tags` per line) and vocabularies."""

    train: str = "data/lac/train.tsv"  # training sentences, `words<TAB>tags` per line
    dev: str = "data/lac/dev.tsv"  # scored (chunk F1) at every evaluation
    test: str = ""  # scored at the end when given
    tags: str = ""  # one tag per line; default: the tags of the training file
    word_min_count: int = 1  # the task's word vocabulary is built from the training file
    prefetch: int = 16  # batches kept ready ahead of the executor


@dataclass
class TaggerRunConfig:
    """A whole tagger run: the fluid LAC demo's recipe (Adam 1e-3, batch 32), without its L2 1e-4 on
    the GRU and its learning-rate multipliers (word_emb ×5, crfw ×0.2), with a global-norm clip of 5."""

    data: TaggingDataConfig = section(TaggingDataConfig)
    model: TaggerConfig = section(TaggerConfig)
    train: TrainConfig = section(TrainConfig, output_dir="output/lac", batch_size=32, max_steps=2000,
                                 eval_every=500, save_every=500)
    optim: OptimConfig = section(OptimConfig, name="adam", learning_rate=1e-3, grad_clip=5.0)
    runtime: RuntimeConfig = section(RuntimeConfig)


class TaggerTraining(Job):
    """Trains the BiGRU-CRF tagger, with or without frozen pretrained ELMo."""

    config_class = TaggerRunConfig
    exports_onnx = False  # its decoder's loops (ELMo's, Viterbi's) are not built for paddle2onnx yet

    def __init__(self, cfg: TaggerRunConfig, dist: DistEnv = DistEnv()):
        check_files(cfg.data, "data", required=("train", "dev"), optional=("test", "tags"))
        self.cfg = cfg
        self.dist = dist
        self.elmo = bilm.ElmoModel.from_dir(cfg.model.elmo_model) if cfg.model.use_elmo else None
        train = read_tagged(cfg.data.train)
        self.tagset = TagSet.load(cfg.data.tags) if cfg.data.tags else TagSet.from_corpus(train)
        for i in range(len(train.words)):
            self.tagset.encode(train, i)  # an unknown tag fails now, naming file and line
        self.words = build_word_vocab(train, cfg.data.word_min_count)
        # What the exported tagger tells its predictor: how the training text was cut (a raw line is cut
        # the same way), and whether its tags follow IOB2 (then decoding keeps to IOB2's transitions).
        self.token_unit = "characters" if all(len(w) == 1 for s in train.words for w in s) else "words"
        self.tag_scheme = "IOB2" if follows_iob2(train.tags) else "IOB1"
        self.work_dir = Path(cfg.train.output_dir)
        self._vocab_files()
        self._evaluators: dict[str, TaggingEvaluator] = {}

    def _vocab_files(self) -> None:
        """The reader processes load vocabularies from files: write them beside the run."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.words.save(self.work_dir / WORDS_FILE)
        self.tagset.save(self.work_dir / TAGS_FILE)

    def stream(self, path: str, loop: bool) -> TaggingStream:
        return TaggingStream(path, str(self.work_dir / WORDS_FILE), str(self.work_dir / TAGS_FILE),
                             str(self.elmo.vocab.path) if self.elmo and self.elmo.cfg.input != "char" else None,
                             self.cfg.train.batch_size, shuffle=loop, seed=self.cfg.train.seed, loop=loop,
                             elmo_spelling=bilm_spelling(self.elmo.cfg, self.elmo.vocab) if self.elmo else None)

    # -- engine interface --------------------------------------------------------

    def summary(self) -> str:
        m = self.cfg.model
        elmo = f"ELMo from {m.elmo_model}" if m.use_elmo else "no ELMo"
        return (f"tagger: {len(self.words):,} words, {len(self.tagset)} tags, {elmo}, "
                f"BiGRU {m.gru_layers}×{m.gru_hidden} | batch {self.cfg.train.batch_size}×{self.dist.world} ranks")

    def build_train_graph(self) -> TrainGraph:
        g = build_tagger(self.cfg.model, len(self.words), len(self.tagset), self.elmo, training=True)
        return TrainGraph(feeds=g.feeds, loss=g.loss)

    def initialize(self, exe, program) -> list[str]:
        if self.elmo is None:
            return []
        return [f"ELMo from {self.elmo.directory}: {bilm.load_pretrained(exe, self.elmo.directory, program)}"]

    def train_batches(self, reader_state: dict | None):
        return Prefetcher(self.stream(self.cfg.data.train, loop=True), reader_state,
                          capacity=self.cfg.data.prefetch)

    def evaluate(self, exe) -> dict[str, float]:
        metrics = self._evaluator("dev").run(exe)
        if self.cfg.data.test:
            metrics.update({f"test_{k}": v for k, v in self._evaluator("test").run(exe).items()})
        return metrics

    def describe_metrics(self, m: dict[str, float]) -> str:
        line = f"dev chunk P {m['precision']:.4f} R {m['recall']:.4f} F1 {m['f1']:.4f}"
        if "test_f1" in m:
            line += f" | test P {m['test_precision']:.4f} R {m['test_recall']:.4f} F1 {m['test_f1']:.4f}"
        return line

    def _elmo_chars(self) -> int:
        return self.elmo.cfg.spelled_chars if self.elmo else 0

    def _meta(self) -> dict:
        return dataclasses.asdict(self.cfg.model) | {"num_tags": len(self.tagset), "words": len(self.words),
                                                     "elmo_chars": self._elmo_chars(),
                                                     "elmo_input": self.elmo.cfg.input if self.elmo else None,
                                                     "token_unit": self.token_unit,
                                                     "tag_scheme": self.tag_scheme}

    def check_checkpoint(self, directory: Path) -> None:
        try:
            saved = json.loads((directory / TAGGER_FILE).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{directory}: unreadable {TAGGER_FILE}: {exc}") from None
        now = self._meta()
        diff = [k for k in saved.keys() & now.keys() if saved[k] != now[k]]  # keys older runs lack are no change
        if diff:
            raise ConfigError(f"{directory} was written for another tagger (differs in {', '.join(sorted(diff))})")

    def write_model_files(self, directory: Path) -> None:
        (directory / TAGGER_FILE).write_text(json.dumps(self._meta(), indent=2) + "\n")
        self.words.save(directory / WORDS_FILE)
        self.tagset.save(directory / TAGS_FILE)
        if self.elmo is not None:
            self.elmo.vocab.save(directory / ELMO_VOCAB_FILE)
        if self.elmo is not None and self.elmo.vocab.characters:
            write_json(directory / ELMO_CHARACTERS_FILE, list(self.elmo.vocab.characters))

    def export(self, exe, output_dir: Path, settings: ExportSettings = ExportSettings()) -> dict[str, str]:
        directory = Path(output_dir, "inference")
        directory.mkdir(parents=True, exist_ok=True)
        graph, program = self.decoding_program()
        inputs = [graph.feeds[n] for n in (WORD_IDS, ELMO_IDS, LENGTHS) if n in graph.feeds]
        prefix = save_inference_program(directory / INFERENCE_PREFIX, inputs, {TAGS_OUTPUT: graph.decoded},
                                        exe, program)
        self.write_model_files(directory)
        return {"exported tagger program": f"{prefix}.json"}

    # -- evaluation ----------------------------------------------------------------

    def decoding_program(self):
        """(graph, program) of the Viterbi decoder, sharing the training program's parameters by name."""
        program = paddle.static.Program()
        # The GRU and the emission layer have generated names: a fresh name
        # generator gives them the names they have in the training program.
        with paddle.static.program_guard(program, paddle.static.Program()), paddle.utils.unique_name.guard():
            allowed = allowed_transitions(self.tagset.tags) if self.tag_scheme == "IOB2" else None
            graph = build_tagger(self.cfg.model, len(self.words), len(self.tagset), self.elmo, training=False,
                                 allowed=allowed)
        return graph, program

    def _evaluator(self, split: str) -> "TaggingEvaluator":
        if split not in self._evaluators:
            path = self.cfg.data.dev if split == "dev" else self.cfg.data.test
            read_tagged(path)  # fail early, naming the file
            self._evaluators[split] = TaggingEvaluator(*self.decoding_program(), self.stream(path, loop=False),
                                                       self.tagset)
        return self._evaluators[split]


class TaggingEvaluator:
    """Decodes a tagged file with the current parameters and scores its chunks."""

    def __init__(self, graph, program, stream: TaggingStream, tagset: TagSet):
        self.graph, self.program, self.stream, self.tagset = graph, program, stream, tagset

    def run(self, exe) -> dict[str, float]:
        counter = ChunkCounter()
        with Prefetcher(self.stream, None, capacity=8) as batches:
            for batch in batches:
                feed = {n: batch.arrays[n] for n in self.graph.feeds}
                (decoded,) = exe.run(self.program, feed=feed, fetch_list=[self.graph.decoded])
                for row, n in enumerate(batch.arrays[LENGTHS]):
                    counter.add(self._names(decoded[row, :n]), self._names(batch.arrays[TAGS][row, :n]))
        return counter.scores()

    def _names(self, ids: np.ndarray) -> list[str]:
        return [self.tagset.tags[i] for i in ids]

