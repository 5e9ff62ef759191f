"""Import a bilm-tf / AllenNLP ELMo model into a model directory.

    python -m bilm.import_bilm_tf --options options.json --weights weights.hdf5 --output DIR
    python -m bilm.import_bilm_tf --options options.json --weights weights.hdf5 \\
        --token-embeddings vocab_embedding.hdf5 --vocab vocab.txt --output DIR

Without `--token-embeddings` the character encoder in `weights.hdf5` is
imported (the published AllenNLP models): any word gets a vector, exactly as
AllenNLP computes it. With it, the import is word-level: the table replaces
the character encoder (whose weights are listed as not used) and unknown
words become `<UNK>`.

DIR gets the layout pretraining writes (`model.json`, `vocab.txt`, one file
per variable under the fluid names), without a softmax (bilm-tf does not
publish it), so `bilm.dump`, `bilm.export` and downstream programs use it as
they use a model trained here. A character model needs no vocabulary; given
one, it is kept in DIR.
"""

from __future__ import annotations

import argparse

from engine.cli import run


def main(argv: list[str] | None = None) -> str:
    """Parses the command line, converts, and returns the output directory."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--options", required=True, help="bilm-tf options.json")
    parser.add_argument("--weights", required=True, help="bilm-tf weights.hdf5")
    parser.add_argument("--token-embeddings",
                        help="HDF5 with dataset 'embedding', one row per vocabulary line (word-level import)")
    parser.add_argument("--vocab", help="vocabulary, one token per line (required with --token-embeddings)")
    parser.add_argument("--output", required=True, help="model directory to create")
    args = parser.parse_args(argv)
    if args.token_embeddings and not args.vocab:
        parser.error("--token-embeddings needs --vocab (its rows are the vocabulary's lines)")

    from bilm import bilm_tf
    from bilm.model_dir import write_model_arrays
    from reader.vocab import SPECIAL_TOKENS, Vocabulary

    char_input = not args.token_embeddings
    vocab = Vocabulary.load(args.vocab) if args.vocab else Vocabulary(list(SPECIAL_TOKENS))
    cfg = bilm_tf.read_options(args.options, len(vocab), char_input=char_input)
    tf_arrays, unused = bilm_tf.read_weights(args.weights, cfg)
    embedding = None if char_input else bilm_tf.read_token_embeddings(args.token_embeddings, cfg)
    write_model_arrays(args.output, cfg, vocab, bilm_tf.to_ours(tf_arrays, embedding, cfg))
    tokens = (f"character encoder ({cfg.char_cnn.num_features} filters, {cfg.char_cnn.n_highway} highway)"
              if char_input else f"vocabulary {cfg.vocab_size:,}")
    print(f"imported a {cfg.num_layers}-layer biLM (cell {cfg.hidden_size}, projection {cfg.embed_size}, "
          f"{tokens}) into {args.output}")
    if unused:
        print(f"not used (word-level import): {len(unused)} character-encoder datasets "
              f"({', '.join(sorted(unused)[:4])}{', …' if len(unused) > 4 else ''})")
    return args.output


if __name__ == "__main__":
    run(main)
