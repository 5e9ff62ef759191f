"""Precision, recall and F1 from counts: the one definition every task's metric uses."""

from __future__ import annotations


def precision_recall_f1(correct: int | float, predicted: int | float, gold: int | float,
                        nothing_predicted: float = 0.0) -> dict[str, float]:
    """{"precision", "recall", "f1"} of `correct` matches among `predicted` and `gold` items.

    `nothing_predicted` is the precision when nothing was predicted: 0 for
    conlleval and the LUKE reference's entity typing, 1 for the official
    TACRED scorer.
    """
    precision = correct / predicted if predicted else nothing_predicted
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}
