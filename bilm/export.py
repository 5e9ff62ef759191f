"""Export a biLM as an inference program for `paddle.inference`.

    python -m bilm.export --model DIR --output OUT_DIR

Writes OUT_DIR/elmo.json + elmo.pdiparams (inputs `word_ids` [B,T] int64 —
`char_ids` [B,T,C] for a character model — and `lengths` [B] int64; output `elmo_layers` [B, L+1, T, 2·P] float32), plus
the model config and vocabulary. Pretraining already does this at the end of
a run; use this for a checkpoint or an imported model.
"""

from __future__ import annotations

import argparse

from engine.cli import run


def main(argv: list[str] | None = None) -> str:
    """Parses the command line and exports; returns the path prefix of the program."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model or checkpoint directory")
    parser.add_argument("--output", required=True, help="directory for the inference program")
    parser.add_argument("--max-length", type=int, default=None,
                        help="fixed number of words per input row (padded); unrolled, faster")
    args = parser.parse_args(argv)

    import paddle

    from bilm.model_dir import export_inference_model, load_model_variables, read_model_dir
    from engine.runtime import DistEnv, RuntimeConfig, setup

    place = setup(RuntimeConfig(), DistEnv())
    cfg, vocab = read_model_dir(args.model)
    exe = paddle.static.Executor(place)
    load_model_variables(args.model, cfg, place, with_softmax=False)
    prefix = export_inference_model(exe, args.output, cfg, vocab, args.max_length)
    print(f"exported {prefix}.json and {prefix}.pdiparams")
    return prefix


if __name__ == "__main__":
    run(main)
