"""Open Entity fine-tuning of LUKE on the shared engine: best epoch by dev F1, then test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F

from engine.atomic import atomic_directory
from engine.dropout import SEED_FEED, StepDropout, seed_input
from engine.export import save_inference_program
from engine.job import TrainGraph
from engine.variables import load_variables, save_variables
from luke_static.heads import entity_type_logits
from luke_static.model import luke_encoder, luke_feeds
from luke_static.open_entity.config import OpenEntityRunConfig
from luke_static.open_entity.data import encode_records, label_set, read_records
from luke_static.open_entity.metrics import micro_prf
from luke_static.task import LukeTask
from reader.arrays import ArrayStream, save_arrays
from reader.prefetch import Prefetcher

LABELS_FILE, INFERENCE_PREFIX, BEST_DIR = "labels.txt", "open_entity", "best"


class OpenEntityTraining(LukeTask):
    """Multi-label typing of the marked mention: classifier on the first entity, BCE with logits."""

    def __init__(self, cfg: OpenEntityRunConfig):
        super().__init__(cfg.model.luke, task="entity_classification")
        self.cfg = cfg
        self.work_dir = Path(cfg.train.output_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        train = read_records(cfg.data.train)
        self.labels = label_set(train)
        self.train_file = self.work_dir / "train_features.npz"
        save_arrays(self.train_file, self._encode(train))
        self.splits = {"dev": self._encode(read_records(cfg.data.dev))}
        if cfg.data.test:
            self.splits["test"] = self._encode(read_records(cfg.data.test))
        self.best_f1 = -1.0
        self._eval = None

    def _encode(self, records) -> dict[str, np.ndarray]:
        return encode_records(records, self.tokenizer, self.labels, self.cfg.data.max_seq_length)

    # -- engine interface ----------------------------------------------------------

    def build_train_graph(self) -> TrainGraph:
        seed = seed_input()
        feeds, logits = self._network(seed)
        labels = paddle.static.data("labels", [-1, len(self.labels)], "float32")
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        return TrainGraph(feeds={**feeds, "labels": labels, SEED_FEED: seed}, loss=loss)

    def train_batches(self, reader_state):
        stream = ArrayStream(str(self.train_file), self.cfg.train.batch_size, shuffle=True,
                             seed=self.cfg.train.seed, loop=True, drop_last=True)
        return Prefetcher(stream, reader_state, capacity=self.cfg.data.prefetch)

    def evaluate(self, exe) -> dict[str, float]:
        metrics = self._score(exe, "dev")
        if metrics["f1"] > self.best_f1:  # keep the parameters of the best evaluation so far
            self.best_f1 = metrics["f1"]
            with atomic_directory(self._best_dir()) as tmp:
                save_variables(tmp, self._parameter_names())
        return {**metrics, "best_f1": self.best_f1}

    def describe_metrics(self, m: dict[str, float]) -> str:
        return f"dev P {m['precision']:.4f} R {m['recall']:.4f} F1 {m['f1']:.4f} (best {m['best_f1']:.4f})"

    def write_model_files(self, directory: Path) -> None:
        super().write_model_files(directory)
        Path(directory, LABELS_FILE).write_text("".join(label + "\n" for label in self.labels))

    def export(self, exe, output_dir: Path) -> dict[str, str]:
        """Restores the best dev parameters, scores the test set with them, exports them."""
        if self._best_dir().is_dir():
            names = self._parameter_names()
            load_variables(self._best_dir(), self._shapes(names), exe.place)
        written = {}
        if "test" in self.splits:
            test = self._score(exe, "test")
            (Path(output_dir) / "test_metrics.json").write_text(json.dumps(test, indent=1))
            print(f"test (best dev F1 {self.best_f1:.4f}): P {test['precision']:.4f} R {test['recall']:.4f} "
                  f"F1 {test['f1']:.4f}", flush=True)
            written["test metrics"] = str(Path(output_dir) / "test_metrics.json")
        program, feeds, logits = self._decoder()
        directory = Path(output_dir, "inference")
        prefix = save_inference_program(directory / INFERENCE_PREFIX, list(feeds.values()), {"logits": logits},
                                        exe, program)
        self.write_model_files(directory)
        return {**written, "open entity program": f"{prefix}.json"}

    # -- graph and scoring ----------------------------------------------------------------

    def _network(self, dropout_seed=None):
        feeds = luke_feeds(with_entities=True)
        out = luke_encoder(self.luke, feeds, dropout_seed=dropout_seed, with_pooler=False)
        dropout = StepDropout(self.luke.hidden_dropout_prob, dropout_seed)
        return feeds, entity_type_logits(out.entity, len(self.labels), dropout)

    def _decoder(self):
        program = paddle.static.Program()
        with paddle.static.program_guard(program, paddle.static.Program()), paddle.utils.unique_name.guard():
            feeds, logits = self._network()
        return program, feeds, logits

    def _score(self, exe, split: str) -> dict[str, float]:
        if self._eval is None:
            self._eval = self._decoder()
        program, feeds, logits = self._eval
        arrays, outputs = self.splits[split], []
        size = self.cfg.train.batch_size
        for i in range(0, len(arrays["labels"]), size):
            (out,) = exe.run(program, feed={n: arrays[n][i:i + size] for n in feeds}, fetch_list=[logits])
            outputs.append(out)
        return micro_prf(np.concatenate(outputs), arrays["labels"])

    def _best_dir(self) -> Path:
        return self.work_dir / BEST_DIR

    def _parameter_names(self) -> list[str]:
        program, _, _ = self._eval or self._decoder()
        return [p.name for p in program.global_block().all_parameters()]

    def _shapes(self, names: list[str]) -> dict[str, tuple[int, ...]]:
        program, _, _ = self._eval or self._decoder()
        return {p.name: tuple(p.shape) for p in program.global_block().all_parameters() if p.name in names}
