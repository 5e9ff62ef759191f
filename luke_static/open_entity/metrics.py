"""Micro precision / recall / F1 over predicted label sets (the LUKE reference's definition)."""

from __future__ import annotations

import numpy as np


def micro_prf(logits: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """Predicted labels are those with logit > 0; P is 0 when nothing is predicted."""
    predicted = logits > 0
    gold = gold > 0.5
    correct = float((predicted & gold).sum())
    p = correct / predicted.sum() if predicted.sum() else 0.0
    r = correct / gold.sum() if gold.sum() else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}
