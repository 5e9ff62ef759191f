"""The official SQuAD v1.1 evaluation.

    python -m luke_static.squad_eval DATA.json PREDICTIONS.json
    {"exact_match": 81.2, "f1": 88.4}

Answers are normalised (lower case, punctuation removed, the articles a/an/
the removed, whitespace collapsed); exact match compares the normalised
strings, F1 the bags of their tokens; each question takes its best score over
the gold answers; both are averaged over all questions ×100. A question with
no prediction scores 0 and is reported on stderr, as the official script does.
"""

from __future__ import annotations

import argparse
import json
import re
import string
import sys
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
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


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Parses the command line, evaluates, prints the scores as JSON."""
    parser = argparse.ArgumentParser(description="Evaluation for SQuAD 1.1")
    parser.add_argument("dataset_file")
    parser.add_argument("prediction_file")
    args = parser.parse_args(argv)
    with open(args.dataset_file, encoding="utf-8") as f:
        dataset = json.load(f)
    if dataset.get("version") != "1.1":
        print(f"Evaluation expects v-1.1, but got dataset with v-{dataset.get('version')}", file=sys.stderr)
    with open(args.prediction_file, encoding="utf-8") as f:
        predictions = json.load(f)
    scores = evaluate(dataset["data"], predictions)
    print(json.dumps(scores))
    return scores


if __name__ == "__main__":
    main()
