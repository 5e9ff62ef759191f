"""Named entity recognition (CoNLL-2003) fine-tuning of LUKE: best epoch by dev F1.

`sh run.sh ner` (`configs/ner.yaml`, `job: luke_static.ner.job.NerTraining`) runs it; the defaults are
the LUKE release's recipe for luke-large: span classification
(`LukeForEntitySpanClassification`). `-o model.head=token` trains HF's token
classification instead (`LukeForTokenClassification`: a BIO tag per word's
first subword, `ner.tokens`), scored alike, so the two heads compare on the
same data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from engine.config import section
from engine.optim import OptimConfig
from engine.runtime import DistEnv
from engine.trainer import TrainConfig
from luke_static.finetune import FineTuneModelConfig, LukeTask, TaskDataConfig, TaskRunConfig, release_optim
from luke_static.heads import entity_span_classification, token_classification
from luke_static.ner.data import (
    SpanSettings,
    decode,
    encode,
    entity_types,
    feature_arrays,
    read_conll,
    span_scores,
)
from luke_static.ner.tokens import encode_tagged, tag_labels, tagged_arrays, tagged_entities, word_tags

HEADS = {"span": "entity_span_classification", "token": "token_classification"}


@dataclass
class NerDataConfig(TaskDataConfig):
    """The `data:` section."""

    train: str = "data/conll2003/eng.train"  # CoNLL format: token first, NER tag last, -DOCSTART- documents
    dev: str = "data/conll2003/eng.testa"  # picks the best evaluation
    max_seq_length: int = 512  # subwords per feature: the sentence and its document's context
    max_entity_length: int = 128  # candidate spans per feature (more make more features)
    max_mention_length: int = 16  # subwords per candidate span


@dataclass
class NerModelConfig(FineTuneModelConfig):
    """The `model:` section: the converted LUKE, and which head tags the entities."""

    head: str = "span"  # span: every candidate span classified (LUKE's); token: a BIO tag per word (HF's)

    def __post_init__(self):
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")


@dataclass
class NerRunConfig(TaskRunConfig):
    """A whole CoNLL-2003 run: the LUKE release's recipe for luke-large (batch 2 × 4 accumulated = 8,
    AdamW lr 1e-5, β2 0.98, eps 1e-6, decay 0.01, 6 % warm-up then linear decay; 5 epochs of the
    14,041 training sentences ≈ 8,780 updates, an evaluation per epoch, the best dev epoch kept)."""

    data: NerDataConfig = section(NerDataConfig)
    model: NerModelConfig = section(NerModelConfig)
    train: TrainConfig = section(TrainConfig, output_dir="output/ner", batch_size=2, max_steps=8780,
                                 log_every=50, eval_every=1756, save_every=1756, keep_checkpoints=2, seed=35)
    optim: OptimConfig = release_optim(1e-5, accumulate_steps=4)


class NerTraining(LukeTask):
    """Every span of a sentence classified as an entity type or `O` (`LukeForEntitySpanClassification`)."""

    config_class = NerRunConfig
    head_task = "entity_span_classification"

    def __init__(self, cfg: NerRunConfig, dist: DistEnv = DistEnv()):
        self.head_task = HEADS[cfg.model.head]
        super().__init__(cfg, dist)
        d = cfg.data
        self.settings = SpanSettings(d.max_seq_length, d.max_entity_length, d.max_mention_length)
        train = read_conll(d.train)
        self.types = entity_types(train)
        self.labels = self.types if cfg.model.head == "span" else tag_labels(self.types)
        self.encoded = {"train": self._encode(train, d.train)}
        self.save_train_features(self._arrays(self.encoded["train"]))
        for split in ("dev", "test"):
            path = getattr(d, split)
            if path:
                self.encoded[split] = self._encode(read_conll(path), path)
                self.splits[split] = self._arrays(self.encoded[split])

    @property
    def by_tokens(self) -> bool:
        return self.head_task == "token_classification"

    def _encode(self, sentences, path):
        if self.by_tokens:
            return encode_tagged(sentences, self.tokenizer, self.settings.max_seq_length, self.labels, path)
        return encode(sentences, self.tokenizer, self.settings, self.types, path)

    def _arrays(self, encoded):
        if self.by_tokens:
            return tagged_arrays(encoded, self.tokenizer)
        return feature_arrays(encoded.features, self.settings, self.tokenizer)

    def head_labels(self) -> list[str]:
        return self.labels

    def describe_data(self) -> str:
        unit = "rows" if self.by_tokens else "features"
        counts = ", ".join(f"{len(e.sentences):,} {s} sentences ({len(e.input_ids if self.by_tokens else e.features):,}"
                           f" {unit})" for s, e in self.encoded.items())
        return f"NER ({self.cfg.model.head} head): types {', '.join(self.types[1:])} | {counts}"

    def data_notes(self) -> list[str]:
        d, notes = self.cfg.data, []
        for split, encoded in self.encoded.items():
            if encoded.cut:
                notes.append(f"{encoded.cut} {split} sentence(s) longer than {d.max_seq_length - 2} subwords cut "
                             "into pieces")
            if getattr(encoded, "unreachable", 0):
                notes.append(f"{encoded.unreachable} {split} entities longer than {d.max_mention_length} subwords "
                             "(no candidate covers them)")
        return notes

    def task_graph(self, training: bool):
        if self.by_tokens:
            return token_classification(self.luke, len(self.labels), training)
        return entity_span_classification(self.luke, len(self.types), training)

    def score(self, exe, split: str) -> dict:
        logits = self.decode(exe, self.splits[split])["logits"]
        encoded = self.encoded[split]
        if self.by_tokens:
            predicted = [set(tagged_entities(tags)) for tags in word_tags(encoded, logits, self.labels)]
        else:
            predicted = decode(encoded, logits, self.types)
        return span_scores(predicted, encoded.sentences)

    def describe_metrics(self, m: dict) -> str:
        best = f" (best {m['best_f1']:.4f})" if "best_f1" in m else ""
        types = " ".join(f"{t} {s['f1']:.3f}" for t, s in m["per_type"].items())
        return f"P {m['precision']:.4f} R {m['recall']:.4f} F1 {m['f1']:.4f}{best} | F1 by type: {types}"

    def predict_settings(self) -> dict:
        if self.by_tokens:
            return {"max_seq_length": self.settings.max_seq_length}
        return dataclasses.asdict(self.settings)
