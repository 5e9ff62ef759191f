"""SQuAD 1.1 fine-tuning of LUKE on the shared engine; the defaults are the release's recipe.

`sh run.sh squad` (`configs/squad.yaml`, `job: luke_static.squad.job.SquadTraining`) runs it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from engine.config import section
from engine.optim import OptimConfig
from engine.runtime import DistEnv
from engine.trainer import TrainConfig
from luke_static.finetune import LukeTask, TaskDataConfig, TaskRunConfig, release_optim
from luke_static.heads import question_answering
from luke_static.squad.answers import best_answers, evaluate
from luke_static.squad.data import (
    WindowSettings,
    answer_report,
    build_features,
    feature_arrays,
    gold_articles,
    read_squad,
)


@dataclass
class SquadDataConfig(TaskDataConfig):
    """The `data:` section: the files, the windows and the answers."""

    train: str = "data/squad/train-v1.1.json"  # SQuAD 1.1 JSON (entity annotations optional)
    dev: str = "data/squad/dev-v1.1.json"  # scored with the official EM/F1 at every evaluation
    max_seq_length: int = 512  # tokens per window
    doc_stride: int = 128  # tokens between the starts of consecutive windows
    max_query_length: int = 64  # question tokens kept
    max_entity_length: int = 0  # entities per window; 0: words only (> 0 needs annotations in the data)
    n_best: int = 20  # start and end candidates per window; answers listed in nbest_predictions.json
    max_answer_length: int = 30  # tokens
    # An answer whose answer_start misses its text is moved to the nearest occurrence of the text, or
    # (not in the context) scored but not trained on, with a note; true: an error instead.
    strict_answers: bool = False


@dataclass
class SquadRunConfig(TaskRunConfig):
    """A whole SQuAD run: the release's recipe for luke-large on 8 GPUs (batch 2 per card × 3
    accumulated × 8 cards = 48; AdamW lr 15e-6, β2 0.98, eps 1e-6, decay 0.01 except biases and
    LayerNorm; 6 % linear warm-up then linear decay; 2 epochs ≈ 3,700 updates; frozen entity embeddings)."""

    data: SquadDataConfig = section(SquadDataConfig)
    train: TrainConfig = section(TrainConfig, output_dir="output/squad", batch_size=2, max_steps=3700, log_every=50,
                                 eval_every=0, save_every=500, keep_checkpoints=2, seed=42)
    optim: OptimConfig = release_optim(15e-6, accumulate_steps=3, freeze=["entity_embeddings.entity_embeddings.weight"])


class SquadTraining(LukeTask):
    """Span extraction: `qa_outputs` over the word states, the mean of start and end cross-entropies."""

    config_class = SquadRunConfig
    head_task = "question_answering"
    best_metric = None  # the release evaluates once, at the end

    def __init__(self, cfg: SquadRunConfig, dist: DistEnv = DistEnv()):
        super().__init__(cfg, dist)
        d = cfg.data
        self.settings = WindowSettings(d.max_seq_length, d.doc_stride, d.max_query_length, d.max_entity_length)
        train = read_squad(d.train, d.strict_answers)
        self.save_train_features(self._arrays(build_features(train, self.tokenizer, self.settings, training=True)))
        reports = [("train", answer_report(train))]
        for split in ("dev", "test"):
            if getattr(d, split):
                examples = read_squad(getattr(d, split), d.strict_answers)
                self.splits[split] = (examples, build_features(examples, self.tokenizer, self.settings,
                                                               training=False))
                reports.append((split, answer_report(examples)))
        self._answer_notes = [f"{split}: {report}" for split, report in reports if report]

    def _arrays(self, features):
        return feature_arrays(features, self.settings, self.tokenizer.pad_id, self.tokenizer.entity_pad_id)

    def describe_data(self) -> str:
        d = self.cfg.data
        return (f"SQuAD: {len(self.splits['dev'][0]):,} dev questions | max_seq {d.max_seq_length}, stride "
                f"{d.doc_stride}, entities {d.max_entity_length or 'none'}")

    def data_notes(self) -> list[str]:
        return self._answer_notes

    def task_graph(self, training: bool):
        return question_answering(self.luke, self.settings.max_entity_length > 0, training)

    def score(self, exe, split: str) -> dict[str, float]:
        predictions, _ = self.predict(exe, split)
        return evaluate(gold_articles(self.splits[split][0]), predictions)

    def describe_metrics(self, m: dict[str, float]) -> str:
        return f"EM {m['exact_match']:.2f} | F1 {m['f1']:.2f}"

    def predict_settings(self) -> dict:
        d = self.cfg.data
        return {**dataclasses.asdict(self.settings), "n_best": d.n_best, "max_answer_length": d.max_answer_length}

    def write_outputs(self, exe, output_dir: Path) -> dict[str, str]:
        predictions, nbest = self.predict(exe, "dev")
        (Path(output_dir) / "predictions.json").write_text(json.dumps(predictions, ensure_ascii=False, indent=1))
        (Path(output_dir) / "nbest_predictions.json").write_text(json.dumps(nbest, ensure_ascii=False, indent=1))
        return {"dev predictions": str(Path(output_dir) / "predictions.json")}

    def predict(self, exe, split: str = "dev"):
        """(predictions, n-best) for a split with the current parameters."""
        examples, features = self.splits[split]
        out = self.decode(exe, self._arrays(features))
        return best_answers(examples, features, out["start_logits"], out["end_logits"],
                            self.cfg.data.n_best, self.cfg.data.max_answer_length)
