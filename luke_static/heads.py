"""Task heads on top of the LUKE encoder (names as in HF's task models)."""

from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle.nn.initializer import Constant, Normal


def dense(name: str, x, n_out: int):
    """x · W + b with HF's initialisation; W is `{name}.weight` [in, out], b `{name}.bias`."""
    w = paddle.static.create_parameter([x.shape[-1], n_out], "float32",
                                       attr=paddle.ParamAttr(name=f"{name}.weight", initializer=Normal(0.0, 0.02)))
    b = paddle.static.create_parameter([n_out], "float32",
                                       attr=paddle.ParamAttr(name=f"{name}.bias", initializer=Constant(0.0)))
    return paddle.matmul(x, w) + b


def span_logits(word_hidden):
    """`qa_outputs`: start and end logits [B, L] from word states [B, L, H]."""
    logits = dense("qa_outputs", word_hidden, 2)
    return logits[:, :, 0], logits[:, :, 1]


def span_loss(start_logits, end_logits, start_positions, end_positions):
    """Mean of the start and end cross-entropies (HF's `LukeForQuestionAnswering`)."""
    start = F.cross_entropy(start_logits, start_positions.unsqueeze(-1))
    end = F.cross_entropy(end_logits, end_positions.unsqueeze(-1))
    return (start + end) / 2.0


def entity_type_logits(entity_hidden, num_labels: int, dropout):
    """`classifier` on the first entity (HF's `LukeForEntityClassification`): [B, num_labels]."""
    return dense("classifier", dropout(entity_hidden[:, 0]), num_labels)
