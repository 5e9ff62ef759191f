"""Precompute a word-level token table from a character model (bilm-tf's `dump_token_embeddings`).

    python -m bilm.cache_token_embeddings --model DIR --vocab VOCAB.txt --output EMB.hdf5

Runs every vocabulary word through the model's character encoder and writes
dataset `embedding` (one row per vocabulary line, `<S>`/`</S>` with their
own spellings). With the model's LSTM weights it makes a word-level model:

    python -m bilm.export_bilm_tf --model DIR --output TF
    python -m bilm.import_bilm_tf --options TF/options.json --weights TF/weights.hdf5 \\
        --token-embeddings EMB.hdf5 --vocab VOCAB.txt --output WORD_DIR

which is faster (a table lookup instead of the CNN) and gives the same
vectors for vocabulary words; other words become `<UNK>`.
"""

from __future__ import annotations

import argparse

from engine.cli import run


def main(argv: list[str] | None = None) -> dict:
    """Parses the command line, writes the table, returns its shape."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="character model directory")
    parser.add_argument("--vocab", required=True, help="vocabulary, one token per line (with <S>, </S>, <UNK>)")
    parser.add_argument("--output", required=True, help="HDF5 file to write")
    parser.add_argument("--batch-size", type=int, default=1024, help="words per run of the encoder")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (0: all cores)")
    args = parser.parse_args(argv)
    if args.batch_size <= 0:
        parser.error("--batch-size must be positive")

    import h5py
    import paddle

    from bilm.model_dir import load_model_variables, read_model_dir
    from bilm.params import create_params
    from bilm.token_embedding import embed_tokens
    from engine.atomic import atomic_file
    from engine.errors import ConfigError
    from engine.runtime import DistEnv, RuntimeConfig, setup
    from reader.chars import char_ids
    from reader.vocab import Vocabulary

    cfg, _ = read_model_dir(args.model)
    if cfg.input != "char":
        raise ConfigError(f"{args.model} is a word model: its token table is already the variable embedding_para")
    words = Vocabulary.load(args.vocab).tokens
    place = setup(RuntimeConfig(threads=args.threads), DistEnv())
    program = paddle.static.Program()
    with paddle.static.program_guard(program, paddle.static.Program()):
        chars = paddle.static.data("char_ids", [-1, cfg.char_cnn.max_characters], "int64")
        vectors = embed_tokens(create_params(cfg, with_softmax=False), cfg, chars)
    exe = paddle.static.Executor(place)
    load_model_variables(args.model, cfg, place, with_softmax=False)
    with atomic_file(args.output) as partial, h5py.File(partial, "w") as out:
        table = out.create_dataset("embedding", (len(words), cfg.embed_size), "float32")
        for start in range(0, len(words), args.batch_size):
            batch = char_ids(words[start:start + args.batch_size], cfg.char_cnn.max_characters)
            (rows,) = exe.run(program, feed={"char_ids": batch}, fetch_list=[vectors])
            table[start:start + len(batch)] = rows
    print(f"wrote {len(words):,} token vectors of width {cfg.embed_size} to {args.output}")
    return {"rows": len(words), "width": cfg.embed_size}


if __name__ == "__main__":
    run(main)
