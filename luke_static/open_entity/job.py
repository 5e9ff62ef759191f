"""Open Entity fine-tuning of LUKE on the shared engine: best epoch by dev F1, then test.

`sh run.sh open_entity` (`configs/open_entity.yaml`, `job: luke_static.open_entity.job.OpenEntityTraining`)
runs it; the defaults are the release's recipe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.config import section
from engine.metrics import precision_recall_f1
from engine.optim import OptimConfig
from engine.runtime import DistEnv
from engine.trainer import TrainConfig
from luke_static.finetune import LukeTask, TaskDataConfig, TaskRunConfig, release_optim
from luke_static.heads import entity_typing
from luke_static.open_entity.data import encode_records, label_set, read_records


@dataclass
class OpenEntityDataConfig(TaskDataConfig):
    """The `data:` section."""

    train: str = "data/open_entity/train.json"  # `[{"sent", "start", "end", "labels"}, …]`
    dev: str = "data/open_entity/dev.json"  # picks the best evaluation
    max_seq_length: int = 256  # tokens per record (longer ones keep the context around the mention that fits)


@dataclass
class OpenEntityRunConfig(TaskRunConfig):
    """A whole Open Entity run: the release's recipe for luke-large (batch 2 × 2 accumulated = 4,
    AdamW lr 1e-5, β2 0.98, eps 1e-6, decay 0.01, 6 % warm-up; 3 epochs ≈ 3,000 updates on 1,998
    training records, an evaluation per epoch)."""

    data: OpenEntityDataConfig = section(OpenEntityDataConfig)
    train: TrainConfig = section(TrainConfig, output_dir="output/open_entity", batch_size=2, max_steps=3000,
                                 log_every=50, eval_every=1000, save_every=1000, keep_checkpoints=2, seed=12)
    optim: OptimConfig = release_optim(1e-5, accumulate_steps=2)


def micro_prf(logits: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """Micro precision / recall / F1 over label sets (the LUKE reference's definition): predicted labels
    are those with logit > 0; precision is 0 when nothing is predicted."""
    predicted, gold = logits > 0, gold > 0.5
    return precision_recall_f1(int((predicted & gold).sum()), int(predicted.sum()), int(gold.sum()))


class OpenEntityTraining(LukeTask):
    """Multi-label typing of the marked mention: classifier on the first entity, BCE with logits."""

    config_class = OpenEntityRunConfig
    head_task = "entity_classification"

    def __init__(self, cfg: OpenEntityRunConfig, dist: DistEnv = DistEnv()):
        super().__init__(cfg, dist, task="entity_classification")
        train = read_records(cfg.data.train)
        self.labels = label_set(train)
        self._cut: dict[str, int] = {}
        self.save_train_features(self._encode("train", train))
        self.splits["dev"] = self._encode("dev", read_records(cfg.data.dev))
        if cfg.data.test:
            self.splits["test"] = self._encode("test", read_records(cfg.data.test))

    def _encode(self, split: str, records) -> dict[str, np.ndarray]:
        arrays, self._cut[split] = encode_records(records, self.tokenizer, self.labels, self.cfg.data.max_seq_length)
        return arrays

    def data_notes(self) -> list[str]:
        return [f"{n:,} {split} record(s) longer than data.max_seq_length {self.cfg.data.max_seq_length} cut to the "
                "mention and the context around it that fits" for split, n in self._cut.items() if n]

    def head_labels(self) -> list[str]:
        return self.labels

    def describe_data(self) -> str:
        return f"Open Entity: {len(self.labels)} labels, {len(self.splits['dev']['labels']):,} dev records"

    def task_graph(self, training: bool):
        return entity_typing(self.luke, len(self.labels), training)

    def score(self, exe, split: str) -> dict[str, float]:
        return micro_prf(self.decode(exe, self.splits[split])["logits"], self.splits[split]["labels"])

    def describe_metrics(self, m: dict[str, float]) -> str:
        best = f" (best {m['best_f1']:.4f})" if "best_f1" in m else ""
        return f"P {m['precision']:.4f} R {m['recall']:.4f} F1 {m['f1']:.4f}{best}"
