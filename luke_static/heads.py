"""LUKE's task models: the encoder plus a head (and its loss), one builder per task.

Each builder is what HF's `LukeFor...` class is: the same head names
(`qa_outputs`, `classifier`), the same losses, outputs under HF's names. A
training build adds the step's `dropout_seed` feed, the labels and the loss;
otherwise the program maps inputs to outputs and nothing else (what
evaluation runs and what is exported).
"""

from __future__ import annotations

from dataclasses import dataclass

import paddle
import paddle.nn.functional as F
from paddle.nn.initializer import Constant, Normal

from engine.ops import SEED_FEED, StepDropout, seed_input
from luke_static.config import LukeConfig
from luke_static.model import luke_encoder, luke_feeds


@dataclass
class TaskGraph:
    """A built task program: feeds by name, outputs by (HF's) name, and the loss in training."""

    feeds: dict
    outputs: dict
    loss: object | None = None


def question_answering(cfg: LukeConfig, with_entities: bool, training: bool) -> TaskGraph:
    """`LukeForQuestionAnswering`: start and end logits [B, L] over the words (`qa_outputs`).

    Training adds `start_positions` / `end_positions` [B] and the mean of the
    start and end cross-entropies.
    """
    feeds = luke_feeds(with_entities)
    dropout = _dropout(cfg, feeds, training)
    logits = dense("qa_outputs", luke_encoder(cfg, feeds, dropout, with_pooler=False).word, 2)
    start, end = logits[:, :, 0], logits[:, :, 1]
    graph = TaskGraph(feeds, {"start_logits": start, "end_logits": end})
    if training:
        for name in ("start_positions", "end_positions"):
            feeds[name] = paddle.static.data(name, [-1], "int64")
        graph.loss = (F.cross_entropy(start, feeds["start_positions"].unsqueeze(-1))
                      + F.cross_entropy(end, feeds["end_positions"].unsqueeze(-1))) / 2.0
    return graph


def entity_typing(cfg: LukeConfig, num_labels: int, training: bool) -> TaskGraph:
    """`LukeForEntityClassification`: `classifier` on the first entity's state, logits [B, num_labels].

    Training adds multi-hot `labels` [B, num_labels] and binary cross-entropy
    with logits (Open Entity's multi-label typing).
    """
    feeds = luke_feeds(with_entities=True)
    dropout = _dropout(cfg, feeds, training)
    entity = luke_encoder(cfg, feeds, dropout, with_pooler=False).entity
    logits = dense("classifier", dropout(entity[:, 0]), num_labels)
    graph = TaskGraph(feeds, {"logits": logits})
    if training:
        feeds["labels"] = paddle.static.data("labels", [-1, num_labels], "float32")
        graph.loss = F.binary_cross_entropy_with_logits(logits, feeds["labels"])
    return graph


def dense(name: str, x, n_out: int):
    """x · W + b with HF's initialisation; W is `{name}.weight` [in, out], b `{name}.bias`."""
    w = paddle.static.create_parameter([x.shape[-1], n_out], "float32",
                                       attr=paddle.ParamAttr(name=f"{name}.weight", initializer=Normal(0.0, 0.02)))
    b = paddle.static.create_parameter([n_out], "float32",
                                       attr=paddle.ParamAttr(name=f"{name}.bias", initializer=Constant(0.0)))
    return paddle.matmul(x, w) + b


def _dropout(cfg: LukeConfig, feeds: dict, training: bool) -> StepDropout:
    """The program's one dropout: off unless training, then seeded by the step's feed."""
    if training:
        feeds[SEED_FEED] = seed_input()
    return StepDropout(cfg.hidden_dropout_prob, feeds.get(SEED_FEED))
