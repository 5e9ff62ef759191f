"""The tagger as an engine job: data, graph, chunk F1 on dev, export for serving."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import paddle

import bilm
from engine.dropout import SEED_FEED, seed_input
from engine.errors import ConfigError
from engine.job import Job, TrainGraph
from reader.prefetch import Prefetcher
from reader.tagging import ELMO_IDS, LENGTHS, TAGS, WORD_IDS, TaggingStream, TagSet, build_word_vocab, read_tagged
from tagger.chunks import ChunkCounter
from tagger.config import TaggerRunConfig
from tagger.model import build_tagger

TAGGER_FILE, WORDS_FILE, TAGS_FILE, ELMO_VOCAB_FILE = "tagger_config.json", "words.txt", "tags.txt", "elmo_vocab.txt"
INFERENCE_PREFIX = "tagger"


class TaggerTraining(Job):
    """Trains the BiGRU-CRF tagger, with or without frozen pretrained ELMo."""

    def __init__(self, cfg: TaggerRunConfig):
        self.cfg = cfg
        self.elmo = bilm.ElmoModel.from_dir(cfg.model.elmo_model) if cfg.model.use_elmo else None
        train = read_tagged(cfg.data.train)
        self.tagset = TagSet.load(cfg.data.tags) if cfg.data.tags else TagSet.from_corpus(train)
        for i in range(len(train.words)):
            self.tagset.encode(train, i)  # an unknown tag fails now, naming file and line
        self.words = build_word_vocab(train, cfg.data.word_min_count)
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
                             str(self.elmo.vocab.path) if self.elmo else None, self.cfg.train.batch_size,
                             shuffle=loop, seed=self.cfg.train.seed, loop=loop, elmo_chars=self._elmo_chars())

    # -- engine interface --------------------------------------------------------

    def build_train_graph(self) -> TrainGraph:
        seed = seed_input()
        g = build_tagger(self.cfg.model, len(self.words), len(self.tagset), self.elmo, training=True,
                         dropout_seed=seed)
        return TrainGraph(feeds={**g.feeds, SEED_FEED: seed}, loss=g.loss)

    def initialize(self, exe, program) -> None:
        if self.elmo is not None:
            report = bilm.load_pretrained(exe, self.elmo.directory, program)
            print(f"ELMo from {self.elmo.directory}: {report}", flush=True)

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
                                                     "elmo_chars": self._elmo_chars()}

    def check_checkpoint(self, directory: Path) -> None:
        try:
            saved = json.loads((directory / TAGGER_FILE).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{directory}: unreadable {TAGGER_FILE}: {exc}") from None
        if saved != self._meta():
            diff = [k for k in saved.keys() | self._meta().keys() if saved.get(k) != self._meta().get(k)]
            raise ConfigError(f"{directory} was written for another tagger (differs in {', '.join(sorted(diff))})")

    def write_model_files(self, directory: Path) -> None:
        (directory / TAGGER_FILE).write_text(json.dumps(self._meta(), indent=2) + "\n")
        self.words.save(directory / WORDS_FILE)
        self.tagset.save(directory / TAGS_FILE)
        if self.elmo is not None:
            self.elmo.vocab.save(directory / ELMO_VOCAB_FILE)

    def export(self, exe, output_dir: Path) -> dict[str, str]:
        directory = Path(output_dir, "inference")
        directory.mkdir(parents=True, exist_ok=True)
        graph, program = self._decoder()
        inputs = [graph.feeds[n] for n in (WORD_IDS, ELMO_IDS, LENGTHS) if n in graph.feeds]
        prefix = str(directory / INFERENCE_PREFIX)
        paddle.static.save_inference_model(prefix, inputs, [graph.decoded], exe, program=program)
        self.write_model_files(directory)
        return {"tagger program": f"{prefix}.json"}

    # -- evaluation ----------------------------------------------------------------

    def _decoder(self):
        program = paddle.static.Program()
        # The GRU and the emission layer have generated names: a fresh name
        # generator gives them the names they have in the training program.
        with paddle.static.program_guard(program, paddle.static.Program()), paddle.utils.unique_name.guard():
            graph = build_tagger(self.cfg.model, len(self.words), len(self.tagset), self.elmo, training=False)
        return graph, program

    def _evaluator(self, split: str) -> "TaggingEvaluator":
        if split not in self._evaluators:
            path = self.cfg.data.dev if split == "dev" else self.cfg.data.test
            read_tagged(path)  # fail early, naming the file
            self._evaluators[split] = TaggingEvaluator(*self._decoder(), self.stream(path, loop=False), self.tagset)
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

