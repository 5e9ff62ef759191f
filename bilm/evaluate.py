"""Perplexity of a biLM on a corpus.

    python -m bilm.evaluate --model DIR --input 'data/dev/*' [--batch-size 32] [--num-steps 20]

DIR is a model directory (`output/elmo/model`) or any checkpoint. Prints the
forward, backward and combined perplexity (full softmax) and the unigram
perplexity of the same tokens.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.cli import run


def main(argv: list[str] | None = None) -> dict:
    """Parses the command line, evaluates, prints and returns the metrics."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model or checkpoint directory")
    parser.add_argument("--input", required=True, help="glob of tokenized files, one sentence per line")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (0: all cores)")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    args = parser.parse_args(argv)

    import paddle

    from bilm.evaluation import PerplexityEvaluator
    from bilm.model_dir import load_model_variables, read_model_dir
    from bilm.params import SOFTMAX_WEIGHT
    from engine.errors import CheckpointError
    from engine.runtime import DistEnv, RuntimeConfig, setup
    from reader.shards import resolve_shards

    place = setup(RuntimeConfig(threads=args.threads), DistEnv())
    cfg, vocab = read_model_dir(args.model)
    if not (Path(args.model) / SOFTMAX_WEIGHT).is_file():
        raise CheckpointError(f"{args.model} has no softmax (models imported from bilm-tf have none), "
                              "so it cannot compute perplexities")
    files = resolve_shards(args.input, "input")
    evaluator = PerplexityEvaluator(cfg, files, vocab, args.batch_size, args.num_steps)
    exe = paddle.static.Executor(place)
    load_model_variables(args.model, cfg, place)
    metrics = evaluator.run(exe)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"perplexity {metrics['ppl']:.2f} (forward {metrics['ppl_fw']:.2f}, backward "
              f"{metrics['ppl_bw']:.2f}) over {int(metrics['tokens']):,} tokens; "
              f"unigram perplexity of the same tokens {metrics['unigram_ppl']:.2f}")
    return metrics


if __name__ == "__main__":
    run(main)
