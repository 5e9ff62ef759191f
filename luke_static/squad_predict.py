"""Answer SQuAD-format questions with an exported model, through `paddle.inference`.

    python -m luke_static.squad_predict --model output/squad/inference --input questions.json \\
        --output predictions.json [--batch-size 8]

Writes {question id: answer}, the official script's prediction format.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from engine.cli import run


def main(argv: list[str] | None = None) -> dict[str, str]:
    """Parses the command line, answers every question, writes and returns the predictions."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the job's inference directory")
    parser.add_argument("--input", required=True, help="SQuAD 1.1 JSON (answers not needed)")
    parser.add_argument("--output", required=True, help="predictions JSON to write")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)

    from engine.predictor import InferenceProgram
    from luke_static.squad.data import read_squad
    from luke_static.squad.features import WindowSettings, build_features, feature_arrays
    from luke_static.squad.job import INFERENCE_PREFIX, SETTINGS_FILE
    from luke_static.squad.postprocess import best_answers
    from luke_static.tokenizer import LukeTokenizer

    directory = Path(args.model)
    saved = json.loads((directory / SETTINGS_FILE).read_text())
    n_best, max_answer = saved.pop("n_best"), saved.pop("max_answer_length")
    settings = WindowSettings(**saved)
    tokenizer = LukeTokenizer.from_dir(directory, add_prefix_space=True)
    examples = read_squad(args.input)
    features = build_features(examples, tokenizer, settings, training=False)
    arrays = feature_arrays(features, settings, tokenizer.pad_id, tokenizer.entity_pad_id)
    program = InferenceProgram(directory / INFERENCE_PREFIX)
    starts, ends = [], []
    for i in range(0, len(features), args.batch_size):
        out = program.run({n: arrays[n][i:i + args.batch_size] for n in program.input_names})
        starts.append(out["start_logits"])
        ends.append(out["end_logits"])
    predictions, _ = best_answers(examples, features, np.concatenate(starts), np.concatenate(ends), n_best, max_answer)
    Path(args.output).write_text(json.dumps(predictions, ensure_ascii=False, indent=1))
    print(f"answered {len(predictions):,} questions → {args.output}")
    return predictions


if __name__ == "__main__":
    run(main)
