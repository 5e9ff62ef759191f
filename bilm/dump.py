"""Write ELMo vectors of a text file to HDF5, as bilm-tf's `dump_bilm_embeddings`.

    python -m bilm.dump --model DIR --input SENTENCES.txt --output OUT.hdf5 \\
        [--batch-size 64] [--stateful] [--layers all|top|mix]

One whitespace-tokenized sentence per input line (a character model spells
every word; a word model maps unknown words to `<UNK>`); one dataset per line, named
by the line's 0-based index ("0", "1", …):
  all  (L+1, n_tokens, 2·P): the token layer [e ; e], then each LSTM layer
       as [forward ; backward] (bilm-tf's layout)
  top  (n_tokens, 2·P): the last LSTM layer
  mix  (n_tokens, 2·P): the average of all layers (ELMo's scalar mix before
       any task has trained its weights)
Every sentence starts from a zero state unless --stateful, which reproduces
bilm-tf: consecutive lines in fixed batch rows, each row continuing from its
state after the previous batch. Input is streamed: memory stays bounded.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from engine.cli import run
from reader.sentences import read_batches


def select(layers: np.ndarray, mode: str) -> np.ndarray:
    """One sentence's (L+1, n, 2P) layers → what `--layers` asks for."""
    if mode == "top":
        return layers[-1]
    if mode == "mix":
        return layers.mean(axis=0)
    return layers


def main(argv: list[str] | None = None) -> dict:
    """Parses the command line, writes the HDF5 file, returns counts and speed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model directory (trained here or imported)")
    parser.add_argument("--input", required=True, help="text file, one tokenized sentence per line")
    parser.add_argument("--output", required=True, help="HDF5 file to write")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--stateful", action="store_true", help="carry LSTM states across batches (bilm-tf)")
    parser.add_argument("--layers", choices=("all", "top", "mix"), default="all")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (0: all cores)")
    args = parser.parse_args(argv)
    if args.batch_size <= 0:
        parser.error("--batch-size must be positive")

    import h5py
    from tqdm import tqdm

    from bilm.embedder import ElmoEmbedder
    from engine.atomic import atomic_file
    from engine.runtime import DistEnv, RuntimeConfig, setup

    place = setup(RuntimeConfig(threads=args.threads), DistEnv())
    embedder = ElmoEmbedder(args.model, place, stateful=args.stateful, max_batch_size=args.batch_size)
    total = sum(1 for _ in open(args.input, "rb")) if Path(args.input).is_file() else None
    output = Path(args.output)
    sentences = tokens = 0
    start_time = time.perf_counter()
    # Written beside the target and renamed at the end: a failed run leaves no half file.
    with atomic_file(output) as partial:
        with h5py.File(partial, "w") as out, tqdm(total=total, unit="sent", disable=None) as bar:
            for first, batch in read_batches(args.input, args.batch_size):
                layers = embedder.embed(batch)
                for i, words in enumerate(batch):
                    out.create_dataset(str(first + i), data=select(layers[i, :, : len(words)], args.layers))
                sentences += len(batch)
                tokens += sum(map(len, batch))
                bar.update(len(batch))
    seconds = time.perf_counter() - start_time
    print(f"wrote {sentences:,} sentences ({tokens:,} tokens) to {output} in {seconds:.1f} s "
          f"({tokens / max(seconds, 1e-9):,.0f} tokens/s)")
    return {"sentences": sentences, "tokens": tokens, "seconds": seconds}


if __name__ == "__main__":
    run(main)
