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
from luke_static.model import WORD_FEEDS, layer_norm, linear, luke_encoder, luke_feeds


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
    logits = dense("qa_outputs", luke_encoder(cfg, feeds, dropout, with_pooler=False, training=training).word, 2)
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
    entity = luke_encoder(cfg, feeds, dropout, with_pooler=False, training=training).entity
    logits = dense("classifier", dropout(entity[:, 0]), num_labels)
    graph = TaskGraph(feeds, {"logits": logits})
    if training:
        feeds["labels"] = paddle.static.data("labels", [-1, num_labels], "float32")
        graph.loss = F.binary_cross_entropy_with_logits(logits, feeds["labels"])
    return graph


def entity_pair_classification(cfg: LukeConfig, num_labels: int, training: bool) -> TaskGraph:
    """`LukeForEntityPairClassification`: the head and tail entities' states concatenated → dropout →
    `classifier` (no bias, as HF's), logits [B, num_labels] (TACRED's relations).

    Training adds `labels` [B] int64 and cross-entropy.
    """
    feeds = luke_feeds(with_entities=True)
    dropout = _dropout(cfg, feeds, training)
    entity = luke_encoder(cfg, feeds, dropout, with_pooler=False, training=training).entity
    logits = dense("classifier", dropout(paddle.concat([entity[:, 0], entity[:, 1]], axis=-1)), num_labels,
                   bias=False)
    graph = TaskGraph(feeds, {"logits": logits})
    if training:
        feeds["labels"] = paddle.static.data("labels", [-1], "int64")
        graph.loss = F.cross_entropy(logits, feeds["labels"].unsqueeze(-1))
    return graph


def entity_span_classification(cfg: LukeConfig, num_labels: int, training: bool) -> TaskGraph:
    """`LukeForEntitySpanClassification`: per candidate span, the word states at its first and last
    token and its entity state concatenated → dropout → `classifier`, logits [B, N, num_labels] (NER).

    Feeds `entity_start_positions` / `entity_end_positions` [B, N] besides the
    encoder's. Training adds `labels` [B, N] int64 (-100 for padded spans, which
    take no part) and the mean cross-entropy over the real ones.
    """
    feeds = luke_feeds(with_entities=True)
    for name in ("entity_start_positions", "entity_end_positions"):
        feeds[name] = paddle.static.data(name, [-1, -1], "int64")
    dropout = _dropout(cfg, feeds, training)
    out = luke_encoder(cfg, feeds, dropout, with_pooler=False, training=training)
    start, end = (paddle.take_along_axis(out.word, feeds[n].unsqueeze(-1), axis=1)  # [B, N, H]: broadcast
                  for n in ("entity_start_positions", "entity_end_positions"))
    logits = dense("classifier", dropout(paddle.concat([start, end, out.entity], axis=-1)), num_labels)
    graph = TaskGraph(feeds, {"logits": logits})
    if training:
        feeds["labels"] = paddle.static.data("labels", [-1, -1], "int64")
        graph.loss = _mean_over_labelled(logits.reshape([-1, num_labels]), feeds["labels"].reshape([-1, 1]))
    return graph


def _mean_over_labelled(logits, labels):
    """Cross-entropy averaged over the rows whose label is not `IGNORED_LABEL`.

    Paddle 3.3.1's `ignore_index` with reduction="mean" divides by every row,
    the ignored ones included.
    """
    real = paddle.cast(labels != IGNORED_LABEL, "float32")
    nll = F.cross_entropy(logits, paddle.clip(labels, min=0), reduction="none")
    return (nll * real).sum() / paddle.clip(real.sum(), min=1.0)


def sequence_classification(cfg: LukeConfig, num_labels: int, training: bool,
                            problem_type: str = "single_label_classification") -> TaskGraph:
    """`LukeForSequenceClassification`: the pooler (`<s>` state → `pooler.dense` → tanh) → dropout →
    `classifier`, logits [B, num_labels] for a text or a text pair. Built over the words alone: HF's
    class reads entities only when they are given, and a text classifier is fed none.

    Training adds `labels` and the loss `problem_type` names, as HF chooses it:
    cross-entropy over `labels` [B] int64 (`single_label_classification`),
    binary cross-entropy over multi-hot `labels` [B, num_labels]
    (`multi_label_classification`), or the squared error to `labels` [B, num_labels]
    float32 (`regression`).
    """
    feeds = luke_feeds(with_entities=False)
    dropout = _dropout(cfg, feeds, training)
    pooled = luke_encoder(cfg, feeds, dropout, with_pooler=True, training=training).pooled
    logits = dense("classifier", dropout(pooled), num_labels)
    graph = TaskGraph(feeds, {"logits": logits})
    if training:
        if problem_type == "single_label_classification":
            feeds["labels"] = paddle.static.data("labels", [-1], "int64")
            graph.loss = F.cross_entropy(logits, feeds["labels"].unsqueeze(-1))
        elif problem_type == "multi_label_classification":
            feeds["labels"] = paddle.static.data("labels", [-1, num_labels], "float32")
            graph.loss = F.binary_cross_entropy_with_logits(logits, feeds["labels"])
        elif problem_type == "regression":
            feeds["labels"] = paddle.static.data("labels", [-1, num_labels], "float32")
            graph.loss = F.mse_loss(logits, feeds["labels"])
        else:
            raise ValueError(f"unknown problem_type {problem_type!r} (one of {', '.join(PROBLEM_TYPES)})")
    return graph


def token_classification(cfg: LukeConfig, num_labels: int, training: bool) -> TaskGraph:
    """`LukeForTokenClassification`: dropout → `classifier` on every word state, logits [B, L, num_labels]
    (words only, no pooler, as HF's).

    Training adds `labels` [B, L] int64 (`IGNORED_LABEL` for tokens that take no
    part: special tokens, padding, a word's later pieces) and the mean
    cross-entropy over the others.
    """
    feeds = luke_feeds(with_entities=False)
    dropout = _dropout(cfg, feeds, training)
    words = luke_encoder(cfg, feeds, dropout, with_pooler=False, training=training).word
    logits = dense("classifier", dropout(words), num_labels)
    graph = TaskGraph(feeds, {"logits": logits})
    if training:
        feeds["labels"] = paddle.static.data("labels", [-1, -1], "int64")
        graph.loss = _mean_over_labelled(logits.reshape([-1, num_labels]), feeds["labels"].reshape([-1, 1]))
    return graph


def multiple_choice(cfg: LukeConfig, training: bool) -> TaskGraph:
    """`LukeForMultipleChoice`: every choice (a text pair, say prompt and answer) through the pooler →
    dropout → `classifier` to one score; logits [B, C] over the C choices.

    The word feeds are [B, C, L] (HF's layout); the encoder runs on the B·C
    rows. Training adds `labels` [B] int64 (the right choice) and cross-entropy.
    """
    feeds = {name: paddle.static.data(name, [-1, -1, -1], "int64") for name in WORD_FEEDS}
    dropout = _dropout(cfg, feeds, training)
    choices = paddle.shape(feeds["input_ids"])[1]
    rows = {name: feeds[name].reshape([-1, paddle.shape(feeds[name])[2]]) for name in WORD_FEEDS}
    pooled = luke_encoder(cfg, rows, dropout, with_pooler=True, training=training).pooled
    logits = dense("classifier", dropout(pooled), 1).reshape([-1, choices])
    graph = TaskGraph(feeds, {"logits": logits})
    if training:
        feeds["labels"] = paddle.static.data("labels", [-1], "int64")
        graph.loss = F.cross_entropy(logits, feeds["labels"].unsqueeze(-1))
    return graph


def masked_lm(cfg: LukeConfig, untied: tuple[str, ...] = ()) -> TaskGraph:
    """`LukeForMaskedLM`: word logits [B, L, vocab] (`logits`) and entity logits [B, N, entity vocab]
    (`entity_logits`).

    Words: `lm_head.dense` → gelu → `lm_head.layer_norm` → the word
    embeddings' transpose (tied, as HF's) + `lm_head.bias`. Entities:
    `entity_predictions.transform.dense` → gelu → `…transform.LayerNorm` →
    the entity embeddings' transpose + `entity_predictions.bias`. A decoder
    named in `untied` (`lm_head.decoder.weight`, `entity_predictions.decoder.weight`:
    checkpoints that do not tie it, as PaddleNLP's entity decoder) is a
    parameter of its own, [in, out].
    """
    feeds = luke_feeds(with_entities=True)
    out = luke_encoder(cfg, feeds, with_pooler=False)
    words = _layer_norm("lm_head.layer_norm", F.gelu(dense("lm_head.dense", out.word, cfg.hidden_size)),
                        cfg.layer_norm_eps)
    entities = _layer_norm("entity_predictions.transform.LayerNorm",
                           F.gelu(dense("entity_predictions.transform.dense", out.entity, cfg.entity_emb_size)),
                           cfg.layer_norm_eps)
    logits = _decode(words, "lm_head", "embeddings.word_embeddings.weight", cfg.vocab_size, untied)
    entity_logits = _decode(entities, "entity_predictions", "entity_embeddings.entity_embeddings.weight",
                            cfg.entity_vocab_size, untied)
    return TaskGraph(feeds, {"logits": logits, "entity_logits": entity_logits})


def _decode(x, head: str, table: str, size: int, untied: tuple[str, ...]):
    bias = paddle.static.create_parameter([size], "float32", attr=paddle.ParamAttr(name=f"{head}.bias",
                                                                                    initializer=Constant(0.0)))
    if f"{head}.decoder.weight" in untied:
        weight = paddle.static.create_parameter([x.shape[-1], size], "float32", attr=paddle.ParamAttr(
            name=f"{head}.decoder.weight", initializer=Normal(0.0, 0.02)))
        return paddle.matmul(x, weight) + bias
    tied = next(p for p in paddle.static.default_main_program().global_block().all_parameters() if p.name == table)
    return paddle.matmul(x, tied, transpose_y=True) + bias


def _layer_norm(name: str, x, eps: float):
    size = x.shape[-1]
    weight, bias = (paddle.static.create_parameter([size], "float32", attr=paddle.ParamAttr(
        name=f"{name}.{part}", initializer=Constant(value))) for part, value in (("weight", 1.0), ("bias", 0.0)))
    return F.layer_norm(x, [size], weight, bias, epsilon=eps)


# -- the heads a checkpoint can carry -------------------------------------------------

# HF's (and PaddleNLP's) class names, and the task each head is for.
HEAD_TASKS = {
    "LukeForQuestionAnswering": "question_answering",
    "LukeForEntityClassification": "entity_classification",
    "LukeForEntityPairClassification": "entity_pair_classification",
    "LukeForEntitySpanClassification": "entity_span_classification",
    "LukeForSequenceClassification": "sequence_classification",
    "LukeForTokenClassification": "token_classification",
    "LukeForMultipleChoice": "multiple_choice",
    "LukeForMaskedLM": "masked_lm",
}
# Classes that hold an encoder and no head.
ENCODER_CLASSES = ("LukeModel",)
LABELLED_TASKS = ("entity_classification", "entity_pair_classification", "entity_span_classification",
                  "sequence_classification", "token_classification")
# The file name of each task's exported program (`NAME.json`), as the fine-tuning jobs write it.
TASK_PROGRAMS = {"question_answering": "squad", "entity_classification": "open_entity",
                 "entity_pair_classification": "relation", "entity_span_classification": "ner",
                 "sequence_classification": "classify", "token_classification": "token_classification",
                 "multiple_choice": "multiple_choice", "masked_lm": "masked_lm"}
# Heads that read the pooler's output.
POOLED_TASKS = ("sequence_classification", "multiple_choice")
# HF's `problem_type`s of a sequence classifier: how its logits are read and trained.
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")


def head_shapes(task: str, cfg: LukeConfig, num_labels: int = 0, untied: tuple[str, ...] = ()) -> dict:
    """The variables of `task`'s head: name → shape ([in, out] for dense weights)."""
    H = cfg.hidden_size
    if task == "question_answering":
        return linear("qa_outputs", H, 2)
    if task == "entity_classification":
        return linear("classifier", H, num_labels)
    if task == "entity_pair_classification":
        return linear("classifier", 2 * H, num_labels, bias=False)
    if task == "entity_span_classification":
        return linear("classifier", 3 * H, num_labels)
    if task in ("sequence_classification", "token_classification"):
        return linear("classifier", H, num_labels)
    if task == "multiple_choice":
        return linear("classifier", H, 1)
    if task != "masked_lm":
        raise ValueError(f"unknown task {task!r}")
    Ee = cfg.entity_emb_size
    shapes = {**linear("lm_head.dense", H, H), **layer_norm("lm_head.layer_norm", H), "lm_head.bias": (cfg.vocab_size,),
              **linear("entity_predictions.transform.dense", H, Ee),
              **layer_norm("entity_predictions.transform.LayerNorm", Ee),
              "entity_predictions.bias": (cfg.entity_vocab_size,)}
    if "lm_head.decoder.weight" in untied:
        shapes["lm_head.decoder.weight"] = (H, cfg.vocab_size)
    if "entity_predictions.decoder.weight" in untied:
        shapes["entity_predictions.decoder.weight"] = (Ee, cfg.entity_vocab_size)
    return shapes


def task_graph(task: str, cfg: LukeConfig, num_labels: int = 0, training: bool = False,
               untied: tuple[str, ...] = (), problem_type: str = "single_label_classification") -> TaskGraph:
    """The builder of `task` (a `HEAD_TASKS` value); question answering is built words-only."""
    if task == "question_answering":
        return question_answering(cfg, with_entities=False, training=training)
    if task == "masked_lm":
        return masked_lm(cfg, untied)
    if task == "multiple_choice":
        return multiple_choice(cfg, training)
    if task == "sequence_classification":
        return sequence_classification(cfg, num_labels, training, problem_type)
    builders = {"entity_classification": entity_typing, "entity_pair_classification": entity_pair_classification,
                "entity_span_classification": entity_span_classification,
                "token_classification": token_classification}
    return builders[task](cfg, num_labels, training)


# A span label that takes no part in the loss (padding), as torch's and HF's default.
IGNORED_LABEL = -100


def dense(name: str, x, n_out: int, bias: bool = True):
    """x · W (+ b) with HF's initialisation; W is `{name}.weight` [in, out], b `{name}.bias`."""
    w = paddle.static.create_parameter([x.shape[-1], n_out], "float32",
                                       attr=paddle.ParamAttr(name=f"{name}.weight", initializer=Normal(0.0, 0.02)))
    if not bias:
        return paddle.matmul(x, w)
    b = paddle.static.create_parameter([n_out], "float32",
                                       attr=paddle.ParamAttr(name=f"{name}.bias", initializer=Constant(0.0)))
    return paddle.matmul(x, w) + b


def _dropout(cfg: LukeConfig, feeds: dict, training: bool) -> StepDropout:
    """The program's one dropout: off unless training, then seeded by the step's feed."""
    if training:
        feeds[SEED_FEED] = seed_input()
    return StepDropout(cfg.hidden_dropout_prob, feeds.get(SEED_FEED))
