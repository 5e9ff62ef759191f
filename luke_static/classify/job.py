"""Text classification fine-tuning of LUKE or mLUKE: the best dev evaluation kept, then test.

`sh run.sh classify` (`configs/classify.yaml`, `job: luke_static.classify.job.ClassifyTraining`)
runs it: single texts or text pairs (`data.text_pair_column`), one label each,
HF's `LukeForSequenceClassification` head with cross-entropy; accuracy and
macro-F1 at every evaluation. The export is served by
`luke_static.pipeline("text-classification", …)` and `python -m luke_static predict`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.config import section
from engine.errors import ConfigError
from engine.optim import OptimConfig
from engine.runtime import DistEnv
from engine.trainer import TrainConfig
from luke_static.classify.data import (
    Columns,
    ReadReport,
    classification_scores,
    encode_examples,
    label_set,
    read_examples,
)
from luke_static.finetune import LukeTask, TaskDataConfig, TaskRunConfig, release_optim
from luke_static.heads import sequence_classification

METRICS = ("accuracy", "macro_f1")


@dataclass
class ClassifyDataConfig(TaskDataConfig):
    """The `data:` section: the files (`.tsv`, `.csv`, `.jsonl`) and which columns hold what."""

    train: str = "data/classify/train.tsv"
    dev: str = "data/classify/dev.tsv"  # picks the best evaluation
    text_column: str = "text"
    text_pair_column: str = ""  # the second text of a pair ("": single texts)
    label_column: str = "label"
    header: bool = True  # TSV/CSV: the first row names the columns (false: columns are "0", "1", …)
    max_seq_length: int = 128  # tokens per text (pair), special tokens included; longer ones are cut
    best_metric: str = "accuracy"  # the dev metric that picks the kept parameters: accuracy or macro_f1

    def __post_init__(self):
        if self.best_metric not in METRICS:
            raise ValueError(f"best_metric must be one of {', '.join(METRICS)}, got {self.best_metric!r}")

    @property
    def columns(self) -> Columns:
        return Columns(self.text_column, self.text_pair_column, self.label_column, self.header)


@dataclass
class ClassifyRunConfig(TaskRunConfig):
    """A whole run: batch 32, AdamW lr 2e-5 with the LUKE release's β2, eps, decay and warm-up, 1,000
    updates with an evaluation every 200 (set `train.max_steps` to about 3 epochs of your data)."""

    data: ClassifyDataConfig = section(ClassifyDataConfig)
    train: TrainConfig = section(TrainConfig, output_dir="output/classify", batch_size=32, max_steps=1000,
                                 log_every=50, eval_every=200, save_every=200, keep_checkpoints=2, seed=42)
    optim: OptimConfig = release_optim(2e-5, accumulate_steps=1)


class ClassifyTraining(LukeTask):
    """The `<s>` state through the pooler → `classifier` over the labels, cross-entropy."""

    config_class = ClassifyRunConfig
    head_task = "sequence_classification"

    def __init__(self, cfg: ClassifyRunConfig, dist: DistEnv = DistEnv()):
        super().__init__(cfg, dist)
        self.best_metric = cfg.data.best_metric
        d = cfg.data
        self.report, self.cut = ReadReport(), {}
        train = read_examples(d.train, d.columns, report=self.report)
        self.labels = label_set(train)
        if len(self.labels) < 2:
            raise ConfigError(f"{d.train}: every row has the label '{self.labels[0]}' (a classifier needs two "
                              f"labels or more; column '{d.label_column}')")
        arrays, self.cut["train"] = encode_examples(train, self.tokenizer, self.labels, d.max_seq_length)
        self.save_train_features(arrays)
        for split in ("dev", "test"):
            path = getattr(d, split)
            if path:
                examples = read_examples(path, d.columns, report=self.report)
                self.splits[split], self.cut[split] = encode_examples(examples, self.tokenizer, self.labels,
                                                                      d.max_seq_length)

    def head_labels(self) -> list[str]:
        return self.labels

    def predict_settings(self) -> dict:
        d = self.cfg.data
        return {"max_seq_length": d.max_seq_length, "text_column": d.text_column,
                "text_pair_column": d.text_pair_column, "header": d.header}

    def describe_data(self) -> str:
        pairs = f"pairs ({self.cfg.data.text_column}, {self.cfg.data.text_pair_column})" \
            if self.cfg.data.text_pair_column else "texts"
        return (f"text classification of {pairs}: {len(self.labels)} labels, "
                f"{len(self.splits['dev']['labels']):,} dev rows")

    def data_notes(self) -> list[str]:
        notes = [f"{n:,} {split} rows longer than data.max_seq_length {self.cfg.data.max_seq_length} were cut"
                 for split, n in self.cut.items() if n]
        if self.report.blank_lines:
            notes.append(f"{self.report.blank_lines:,} blank lines skipped")
        return notes

    def task_graph(self, training: bool):
        return sequence_classification(self.luke, len(self.labels), training)

    def score(self, exe, split: str) -> dict:
        arrays = self.splits[split]
        predicted = np.argmax(self.decode(exe, arrays)["logits"], axis=-1)
        return classification_scores(predicted, arrays["labels"], self.labels)

    def describe_metrics(self, m: dict) -> str:
        key = f"best_{self.best_metric}"
        best = f" (best {self.best_metric} {m[key]:.4f})" if key in m else ""
        return f"accuracy {m['accuracy']:.4f} macro-F1 {m['macro_f1']:.4f}{best}"
