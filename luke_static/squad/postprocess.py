"""Start/end logits of the windows → one answer text per question (and the n best).

For every window: the `n_best` highest start and end logits; a pair is a
candidate when both lie in the window's context, end ≥ start, the answer has
at most `max_answer_length` tokens, and the window gives the start token its
maximum context. Its score is start + end logit; its text is the context
between the first token's first character and the last token's last one.
The best candidate over a question's windows is its answer ("" if none).
"""

from __future__ import annotations

import numpy as np

from luke_static.squad.data import SquadExample
from luke_static.squad.features import SquadFeature


def best_answers(examples: list[SquadExample], features: list[SquadFeature], start_logits: np.ndarray,
                 end_logits: np.ndarray, n_best: int = 20, max_answer_length: int = 30):
    """({question id: answer}, {question id: [n best {text, probability, start_logit, end_logit}]})."""
    candidates: dict[int, list] = {i: [] for i in range(len(examples))}
    for f, feature in enumerate(features):
        candidates[feature.example] += _candidates(examples[feature.example], feature, start_logits[f],
                                                   end_logits[f], n_best, max_answer_length)
    predictions, nbest = {}, {}
    for i, example in enumerate(examples):
        ranked, seen = [], set()
        for score, start_logit, end_logit, text in sorted(candidates[i], key=lambda c: -c[0]):
            if text not in seen:
                seen.add(text)
                ranked.append((score, start_logit, end_logit, text))
            if len(ranked) == n_best:
                break
        if not ranked:
            ranked = [(0.0, 0.0, 0.0, "")]
        scores = np.array([r[0] for r in ranked], np.float64)
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        predictions[example.qid] = ranked[0][3]
        nbest[example.qid] = [{"text": t, "probability": float(p), "start_logit": float(s), "end_logit": float(e)}
                              for (_, s, e, t), p in zip(ranked, probs)]
    return predictions, nbest


def _candidates(example, feature, start_logits, end_logits, n_best, max_answer_length) -> list:
    first, count = feature.context_start, len(feature.offsets)
    starts = np.argsort(-start_logits)[:n_best]
    ends = np.argsort(-end_logits)[:n_best]
    found = []
    for s in starts:
        for e in ends:
            if not (first <= s < first + count and first <= e < first + count):
                continue
            if e < s or e - s + 1 > max_answer_length or not feature.max_context[s - first]:
                continue
            a, b = feature.offsets[s - first][0], feature.offsets[e - first][1]
            text = example.context[a:b].strip()
            found.append((float(start_logits[s] + end_logits[e]), float(start_logits[s]),
                          float(end_logits[e]), text))
    return found
