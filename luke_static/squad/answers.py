"""Start/end logits → answers, and how answers are scored.

**Post-processing.** For every window: the `n_best` highest start and end
logits; a pair is a candidate when both lie in the window's context, end ≥
start, the answer has at most `max_answer_length` tokens, and the window
gives the start token its maximum context. Its score is start + end logit;
its text is the context between the first token's first character and the
last token's last one. The best candidate over a question's windows is its
answer ("" if none).

**The official SQuAD v1.1 evaluation.** Answers are normalised (lower case,
punctuation removed, the articles a/an/the removed, whitespace collapsed);
exact match compares the normalised strings, F1 the bags of their tokens;
each question takes its best score over the gold answers; both are averaged
over all questions ×100. A question with no prediction scores 0 and is
reported on stderr, as the official script does.
"""

from __future__ import annotations

import re
import string
import sys
from collections import Counter

import numpy as np

from luke_static.squad.data import SquadExample, SquadFeature


def best_answers(examples: list[SquadExample], features: list[SquadFeature], start_logits: np.ndarray,
                 end_logits: np.ndarray, n_best: int = 20, max_answer_length: int = 30):
    """({question id: answer}, {question id: [n best {text, probability, start_logit, end_logit, start, end}]}),
    `start`/`end` being the answer's character offsets in the context."""
    candidates: dict[int, list] = {i: [] for i in range(len(examples))}
    for f, feature in enumerate(features):
        candidates[feature.example] += _candidates(examples[feature.example], feature, start_logits[f],
                                                   end_logits[f], n_best, max_answer_length)
    predictions, nbest = {}, {}
    for i, example in enumerate(examples):
        ranked, seen = [], set()
        for candidate in sorted(candidates[i], key=lambda c: -c[0]):
            if candidate[3] not in seen:
                seen.add(candidate[3])
                ranked.append(candidate)
            if len(ranked) == n_best:
                break
        if not ranked:
            ranked = [(0.0, 0.0, 0.0, "", 0, 0)]
        scores = np.array([r[0] for r in ranked], np.float64)
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        predictions[example.qid] = ranked[0][3]
        nbest[example.qid] = [{"text": t, "probability": float(p), "start_logit": float(s), "end_logit": float(e),
                               "start": a, "end": b} for (_, s, e, t, a, b), p in zip(ranked, probs)]
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
            raw = example.context[a:b]
            text = raw.strip()
            a += len(raw) - len(raw.lstrip())
            found.append((float(start_logits[s] + end_logits[e]), float(start_logits[s]),
                          float(end_logits[e]), text, a, a + len(text)))
    return found


# -- scoring ------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (the official normalisation)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    """F1 of the bags of normalised tokens."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def evaluate(articles: list, predictions: dict[str, str], warn=None) -> dict[str, float]:
    """{"exact_match", "f1"} over every question of the dataset's `data` list."""
    total = em = f1_sum = 0.0
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    print(f"Unanswered question {qa['id']} will receive score 0.", file=warn or sys.stderr)
                    continue
                golds = [answer["text"] for answer in qa["answers"]]
                prediction = predictions[qa["id"]]
                em += max(exact_match(prediction, g) for g in golds)
                f1_sum += max(f1(prediction, g) for g in golds)
    return {"exact_match": 100.0 * em / total, "f1": 100.0 * f1_sum / total}


def oracle(examples, features) -> tuple[int, dict[str, str]]:
    """(questions whose answer lies in some window, the oracle's predictions)."""
    predictions = {}
    for feature in features:
        example = examples[feature.example]
        if feature.answer_in_window and example.qid not in predictions:
            first = feature.context_start
            a, b = feature.offsets[feature.start - first][0], feature.offsets[feature.end - first][1]
            predictions[example.qid] = example.context[a:b].strip()
    return len(predictions), predictions
