"""Export a model directory to the bilm-tf / AllenNLP format.

    python -m bilm.export_bilm_tf --model DIR --output OUTDIR

Writes OUTDIR/options.json, weights.hdf5 and vocab.txt. A word model also
gets token_embeddings.hdf5 (dataset `embedding`, one row per line of
vocab.txt) — what bilm-tf's `BidirectionalLanguageModel(options, weights,
use_character_inputs=False, embedding_weight_file=...)` loads; a character
model's encoder goes into weights.hdf5 with its `char_cnn` options, as the
published models. TF's cell adds 1.0 to the forget gate; models trained here
have none, so it is taken out of the stored bias.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli import run

OPTIONS, WEIGHTS, TOKEN_EMBEDDINGS, VOCAB = "options.json", "weights.hdf5", "token_embeddings.hdf5", "vocab.txt"


def main(argv: list[str] | None = None) -> Path:
    """Parses the command line, converts, and returns the output directory."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model or checkpoint directory")
    parser.add_argument("--output", required=True, help="directory for the bilm-tf files")
    args = parser.parse_args(argv)

    from bilm import bilm_tf
    from bilm.model_dir import read_model_arrays, read_model_dir
    from engine.atomic import atomic_directory

    cfg, vocab = read_model_dir(args.model)
    tf_arrays, embedding = bilm_tf.to_tf(read_model_arrays(args.model, cfg), cfg)
    with atomic_directory(args.output) as tmp:
        bilm_tf.write_options(tmp / OPTIONS, cfg)
        bilm_tf.write_weights(tmp / WEIGHTS, tf_arrays)
        written = [OPTIONS, WEIGHTS, VOCAB]
        if embedding is not None:
            bilm_tf.write_token_embeddings(tmp / TOKEN_EMBEDDINGS, embedding)
            written.insert(2, TOKEN_EMBEDDINGS)
        vocab.save(tmp / VOCAB)
    print(f"wrote {', '.join(written)} to {args.output}")
    return Path(args.output)


if __name__ == "__main__":
    run(main)
