"""Import a bilm-tf / AllenNLP ELMo model (word-level) into a model directory.

    python -m bilm.import_bilm_tf --options options.json --weights weights.hdf5 \\
        --token-embeddings vocab_embedding.hdf5 --vocab vocab.txt --output DIR

DIR gets the layout pretraining writes (`model.json`, `vocab.txt`, one file
per variable under the fluid names), without a softmax (bilm-tf does not
publish it), so `bilm.dump`, `bilm.export` and downstream programs use it as
they use a model trained here. Character-CNN weights are listed as not used.
"""

from __future__ import annotations

import argparse

from engine.cli import run


def main(argv: list[str] | None = None) -> str:
    """Parses the command line, converts, and returns the output directory."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--options", required=True, help="bilm-tf options.json")
    parser.add_argument("--weights", required=True, help="bilm-tf weights.hdf5")
    parser.add_argument("--token-embeddings", required=True,
                        help="HDF5 with dataset 'embedding', one row per vocabulary line")
    parser.add_argument("--vocab", required=True, help="vocabulary, one token per line")
    parser.add_argument("--output", required=True, help="model directory to create")
    args = parser.parse_args(argv)

    from bilm import bilm_tf
    from bilm.model_dir import write_model_arrays
    from reader.vocab import Vocabulary

    vocab = Vocabulary.load(args.vocab)
    cfg = bilm_tf.read_options(args.options, len(vocab))
    tf_arrays, char_cnn = bilm_tf.read_weights(args.weights, cfg)
    embedding = bilm_tf.read_token_embeddings(args.token_embeddings, cfg)
    write_model_arrays(args.output, cfg, vocab, bilm_tf.to_ours(tf_arrays, embedding, cfg))
    print(f"imported a {cfg.num_layers}-layer biLM (cell {cfg.hidden_size}, projection {cfg.embed_size}, "
          f"vocabulary {cfg.vocab_size:,}) into {args.output}")
    if char_cnn:
        print(f"not used (word-level import): {len(char_cnn)} character-encoder datasets "
              f"({', '.join(sorted(char_cnn)[:4])}{', …' if len(char_cnn) > 4 else ''})")
    return args.output


if __name__ == "__main__":
    run(main)
