"""Type entity mentions with an exported Open Entity model, through `paddle.inference`.

    python -m luke_static.open_entity_predict --model output/open_entity/inference --input records.json \\
        [--output predictions.json]

Input records need `sent`, `start`, `end` (labels are ignored); the output
lists, per record, the labels whose logit is above 0.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.cli import run


def main(argv: list[str] | None = None) -> list[list[str]]:
    """Parses the command line, types every mention, prints or writes the labels."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the job's inference directory")
    parser.add_argument("--input", required=True, help="Open Entity JSON")
    parser.add_argument("--output", help="JSON file for the predicted labels (default: print)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-seq-length", type=int, default=256)
    args = parser.parse_args(argv)

    from engine.predictor import InferenceProgram
    from luke_static.open_entity.data import encode_records, read_records
    from luke_static.open_entity.job import INFERENCE_PREFIX, LABELS_FILE
    from luke_static.tokenizer import LukeTokenizer

    directory = Path(args.model)
    labels = (directory / LABELS_FILE).read_text(encoding="utf-8").split()
    tokenizer = LukeTokenizer.from_dir(directory, add_prefix_space=True, task="entity_classification")
    arrays = encode_records(read_records(args.input), tokenizer, labels, args.max_seq_length)
    program = InferenceProgram(directory / INFERENCE_PREFIX)
    predicted = []
    for i in range(0, len(arrays["labels"]), args.batch_size):
        logits = program.run({n: arrays[n][i:i + args.batch_size] for n in program.input_names})["logits"]
        predicted += [[label for label, logit in zip(labels, row) if logit > 0] for row in logits]
    text = json.dumps(predicted, ensure_ascii=False)
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text)
    return predicted


if __name__ == "__main__":
    run(main)
