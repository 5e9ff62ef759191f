"""Relation classification (TACRED) fine-tuning of LUKE: best epoch by dev F1, then test.

`sh run.sh relation` (`configs/relation.yaml`, `job: luke_static.relation.job.RelationTraining`)
runs it; the defaults are the LUKE release's recipe for luke-large.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.config import section
from engine.optim import OptimConfig
from engine.runtime import DistEnv
from engine.trainer import TrainConfig
from luke_static.finetune import LukeTask, TaskDataConfig, TaskRunConfig, release_optim
from luke_static.heads import entity_pair_classification
from luke_static.relation.data import encode_relations, read_relations, relation_set, tacred_scores


@dataclass
class RelationDataConfig(TaskDataConfig):
    """The `data:` section."""

    train: str = "data/tacred/train.json"  # TACRED-format JSON list (or JSONL)
    dev: str = "data/tacred/dev.json"  # picks the best evaluation
    none_label: str = "no_relation"  # the relation the scorer leaves out
    max_seq_length: int = 256  # tokens per sentence with its markers (longer records are an error)


@dataclass
class RelationRunConfig(TaskRunConfig):
    """A whole TACRED run: the LUKE release's recipe for luke-large (batch 4 × 8 accumulated = 32,
    AdamW lr 1e-5, β2 0.98, eps 1e-6, decay 0.01, 6 % warm-up then linear decay; 5 epochs of the
    68,124 training sentences ≈ 10,650 updates, an evaluation per epoch, the best dev epoch kept)."""

    data: RelationDataConfig = section(RelationDataConfig)
    train: TrainConfig = section(TrainConfig, output_dir="output/relation", batch_size=4, max_steps=10650,
                                 log_every=50, eval_every=2130, save_every=2130, keep_checkpoints=2, seed=42)
    optim: OptimConfig = release_optim(1e-5, accumulate_steps=8)


class RelationTraining(LukeTask):
    """The subject's and object's entity states → `classifier` over the relations, cross-entropy."""

    config_class = RelationRunConfig
    head_task = "entity_pair_classification"

    def __init__(self, cfg: RelationRunConfig, dist: DistEnv = DistEnv()):
        super().__init__(cfg, dist, task="entity_pair_classification")
        d = cfg.data
        train = read_relations(d.train)
        self.labels = relation_set(train, d.none_label)
        self.save_train_features(encode_relations(train, self.tokenizer, self.labels, d.max_seq_length, d.train))
        for split in ("dev", "test"):
            path = getattr(d, split)
            if path:
                self.splits[split] = encode_relations(read_relations(path), self.tokenizer, self.labels,
                                                      d.max_seq_length, path)

    def head_labels(self) -> list[str]:
        return self.labels

    def describe_data(self) -> str:
        return (f"relations: {len(self.labels)} (with {self.cfg.data.none_label}), "
                f"{len(self.splits['dev']['labels']):,} dev sentences")

    def task_graph(self, training: bool):
        return entity_pair_classification(self.luke, len(self.labels), training)

    def score(self, exe, split: str) -> dict:
        arrays = self.splits[split]
        predicted = np.argmax(self.decode(exe, arrays)["logits"], axis=-1)
        return tacred_scores([self.labels[i] for i in predicted], [self.labels[i] for i in arrays["labels"]],
                             self.cfg.data.none_label)

    def describe_metrics(self, m: dict) -> str:
        best = f" (best {m['best_f1']:.4f})" if "best_f1" in m else ""
        return f"P {m['precision']:.4f} R {m['recall']:.4f} F1 {m['f1']:.4f}{best} (micro, without no-relation)"
