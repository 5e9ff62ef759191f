"""SQuAD 1.1 fine-tuning of LUKE on the shared engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import paddle

from engine.dropout import SEED_FEED, seed_input
from engine.export import save_inference_program
from engine.job import TrainGraph
from luke_static.heads import span_logits, span_loss
from luke_static.model import luke_encoder, luke_feeds
from luke_static.squad.config import SquadRunConfig
from luke_static.squad.data import read_squad
from luke_static.squad.features import WindowSettings, build_features, feature_arrays
from luke_static.squad.postprocess import best_answers
from luke_static.squad_eval import evaluate
from luke_static.task import LukeTask
from reader.arrays import ArrayStream, save_arrays
from reader.prefetch import Prefetcher

LABELS = ("start_positions", "end_positions")
SETTINGS_FILE = "squad_settings.json"
INFERENCE_PREFIX = "squad"


class SquadTraining(LukeTask):
    """Span extraction: `qa_outputs` over the word states, the mean of start and end cross-entropies."""

    def __init__(self, cfg: SquadRunConfig):
        super().__init__(cfg.model.luke)
        self.cfg = cfg
        d = cfg.data
        self.settings = WindowSettings(d.max_seq_length, d.doc_stride, d.max_query_length, d.max_entity_length)
        self.work_dir = Path(cfg.train.output_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        train = build_features(read_squad(d.train), self.tokenizer, self.settings, training=True)
        self.train_file = self.work_dir / "train_features.npz"
        save_arrays(self.train_file, self._arrays(train))
        self.dev_examples = read_squad(d.dev)
        self.dev_features = build_features(self.dev_examples, self.tokenizer, self.settings, training=False)
        self._eval = None

    def _arrays(self, features):
        return feature_arrays(features, self.settings, self.tokenizer.pad_id, self.tokenizer.entity_pad_id)

    # -- engine interface ----------------------------------------------------------

    def build_train_graph(self) -> TrainGraph:
        seed = seed_input()
        feeds, start, end = self._network(dropout_seed=seed)
        labels = {n: paddle.static.data(n, [-1], "int64") for n in LABELS}
        loss = span_loss(start, end, labels["start_positions"], labels["end_positions"])
        return TrainGraph(feeds={**feeds, **labels, SEED_FEED: seed}, loss=loss)

    def train_batches(self, reader_state):
        stream = ArrayStream(str(self.train_file), self.cfg.train.batch_size, shuffle=True,
                             seed=self.cfg.train.seed, loop=True, drop_last=True)
        return Prefetcher(stream, reader_state, capacity=self.cfg.data.prefetch)

    def evaluate(self, exe) -> dict[str, float]:
        predictions, _ = self.predict(exe)
        articles = [{"paragraphs": [{"qas": [{"id": e.qid, "answers": [{"text": t} for t, _ in e.answers]}
                                             for e in self.dev_examples]}]}]
        return evaluate(articles, predictions)

    def describe_metrics(self, m: dict[str, float]) -> str:
        return f"dev EM {m['exact_match']:.2f} | F1 {m['f1']:.2f}"

    def write_model_files(self, directory: Path) -> None:
        super().write_model_files(directory)
        (Path(directory) / SETTINGS_FILE).write_text(json.dumps({**self.settings.__dict__,
                                                                 "n_best": self.cfg.data.n_best,
                                                                 "max_answer_length": self.cfg.data.max_answer_length}))

    def export(self, exe, output_dir: Path) -> dict[str, str]:
        predictions, nbest = self.predict(exe)
        (Path(output_dir) / "predictions.json").write_text(json.dumps(predictions, ensure_ascii=False, indent=1))
        (Path(output_dir) / "nbest_predictions.json").write_text(json.dumps(nbest, ensure_ascii=False, indent=1))
        program, feeds, start, end = self._decoder()
        directory = Path(output_dir, "inference")
        prefix = save_inference_program(directory / INFERENCE_PREFIX, list(feeds.values()),
                                        {"start_logits": start, "end_logits": end}, exe, program)
        self.write_model_files(directory)
        return {"dev predictions": str(Path(output_dir) / "predictions.json"), "squad program": f"{prefix}.json"}

    # -- graph and prediction ------------------------------------------------------------

    def _network(self, dropout_seed=None):
        feeds = luke_feeds(with_entities=self.settings.max_entity_length > 0)
        out = luke_encoder(self.luke, feeds, dropout_seed=dropout_seed, with_pooler=False)
        start, end = span_logits(out.word)
        return feeds, start, end

    def _decoder(self):
        program = paddle.static.Program()
        with paddle.static.program_guard(program, paddle.static.Program()), paddle.utils.unique_name.guard():
            feeds, start, end = self._network()
        return program, feeds, start, end

    def predict(self, exe):
        """(predictions, n-best) for the dev set with the current parameters."""
        if self._eval is None:
            self._eval = self._decoder()
        program, feeds, start, end = self._eval
        arrays = self._arrays(self.dev_features)
        starts, ends = [], []
        for i in range(0, len(self.dev_features), self.cfg.train.batch_size):
            batch = {n: arrays[n][i:i + self.cfg.train.batch_size] for n in feeds}
            s, e = exe.run(program, feed=batch, fetch_list=[start, end])
            starts.append(s)
            ends.append(e)
        return best_answers(self.dev_examples, self.dev_features, np.concatenate(starts), np.concatenate(ends),
                            self.cfg.data.n_best, self.cfg.data.max_answer_length)
