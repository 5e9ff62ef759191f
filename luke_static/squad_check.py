"""Check SQuAD preprocessing before training: how many answers survive tokenization and windows.

    python -m luke_static.squad_check DATA.json --model DIR [--max-seq-length 512] [--doc-stride 128]
        [--max-query-length 64]

Tokenizes like training (DIR's tokenizer), cuts the doc-stride windows, and
for every question looks for a window holding the first gold answer; then
scores an oracle that answers with exactly that gold token span, mapped back
to text the way predictions are. Anything below 100 is lost before training.
"""

from __future__ import annotations

import argparse
import io
import json

from engine.cli import run


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


def main(argv: list[str] | None = None) -> dict:
    """Parses the command line, checks the data, prints and returns the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="SQuAD 1.1 JSON")
    parser.add_argument("--model", required=True, help="LUKE model directory (for its tokenizer)")
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--max-query-length", type=int, default=64)
    args = parser.parse_args(argv)

    from luke_static.squad.data import read_squad
    from luke_static.squad.features import WindowSettings, build_features
    from luke_static.squad_eval import evaluate
    from luke_static.tokenizer import LukeTokenizer

    examples = read_squad(args.data)
    tokenizer = LukeTokenizer.from_dir(args.model, add_prefix_space=True)
    settings = WindowSettings(args.max_seq_length, args.doc_stride, args.max_query_length)
    features = build_features(examples, tokenizer, settings, training=True)
    answered = [e for e in examples if e.answers]
    reachable, predictions = oracle(examples, features)
    articles = [{"paragraphs": [{"qas": [{"id": e.qid, "answers": [{"text": t} for t, _ in e.answers]}
                                         for e in answered]}]}]
    # Unreachable answers are what this reports; no need for one warning each.
    scores = evaluate(articles, predictions, warn=io.StringIO()) if answered else {"exact_match": 0.0, "f1": 0.0}
    report = {"questions": len(examples), "with_answers": len(answered), "reachable": reachable,
              "windows": len(features), "oracle_exact_match": scores["exact_match"], "oracle_f1": scores["f1"]}
    print(f"{reachable:,} of {len(answered):,} gold answers fit a window ({len(features):,} windows); "
          f"oracle EM {scores['exact_match']:.2f}, F1 {scores['f1']:.2f}")
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    run(main)
