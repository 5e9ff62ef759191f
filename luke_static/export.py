"""Export a LUKE model directory as an inference program.

    python -m luke_static.export --model DIR --output PREFIX [--word-only]

Writes PREFIX.json + PREFIX.pdiparams for `paddle.inference`: feeds
`input_ids`, `attention_mask`, `token_type_ids`, `entity_ids`,
`entity_attention_mask`, `entity_token_type_ids`, `entity_position_ids`
(all int64; the last [B, N, M] padded with -1); outputs
`word_last_hidden_state`, `entity_last_hidden_state`, `pooler_output`.
"""

from __future__ import annotations

import argparse

from engine.cli import run


def main(argv: list[str] | None = None) -> str:
    """Parses the command line and exports; returns the path prefix."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="LUKE model directory (from luke_static.convert)")
    parser.add_argument("--output", required=True, help="path prefix of the program files")
    parser.add_argument("--word-only", action="store_true", help="export without the entity inputs")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import paddle

    from engine.runtime import DistEnv, RuntimeConfig, setup
    from luke_static.model_dir import export_encoder

    place = setup(RuntimeConfig(threads=args.threads), DistEnv())
    prefix = export_encoder(paddle.static.Executor(place), place, args.model, args.output,
                            with_entities=not args.word_only)
    print(f"exported {prefix}.json and {prefix}.pdiparams")
    return prefix


if __name__ == "__main__":
    run(main)
