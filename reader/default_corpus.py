"""A built-in English corpus for ELMo pretraining, derived from CPython itself.

The pretraining job has to run out of the box: no download, no user data.
The sentences come from `reader.stdlib_text` (the help topics and standard
library docstrings every CPython ships) and are written as::

    ROOT/train/shard-00000.txt ...  five of every six sentences, round-robin
    ROOT/dev/shard-00000.txt        every sixth sentence
    ROOT/vocab.txt                  <S>, </S>, <UNK>, then train tokens by
                                    descending count (ties alphabetical)
    ROOT/corpus.json                build parameters and counts

One sentence per line, tokens separated by single spaces, UTF-8. For a given
Python version the output is byte-for-byte deterministic.

Command line::

    python -m reader.default_corpus OUT_DIR [--min-count N] [--num-shards N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.atomic import atomic_directory
from reader.stdlib_text import extract_sentences
from reader.vocab import SPECIAL_TOKENS

__all__ = [
    "DefaultCorpus",
    "build_default_corpus",
    "main",
]

# Bump whenever extraction or layout changes, so that older builds on disk
# are rebuilt instead of being silently reused.
FORMAT_VERSION = 1

DEV_EVERY = 6  # sentence i goes to dev when i % DEV_EVERY == DEV_EVERY - 1
DEFAULT_MIN_COUNT = 3
DEFAULT_NUM_SHARDS = 5
# Keeps an epoch to minutes for a small LM should a future Python ship far
# more documentation; CPython 3.11 yields ~0.23M train tokens, well below.
DEFAULT_MAX_TOKENS = 1_500_000

MANIFEST = "corpus.json"
VOCAB = "vocab.txt"
SHARD_PATTERN = "shard-*.txt"

@dataclass(frozen=True)
class DefaultCorpus:
    """A complete corpus on disk, as returned by :func:`build_default_corpus`."""

    root: Path
    train_glob: str
    dev_glob: str
    vocab: Path
    num_train_sentences: int
    num_dev_sentences: int
    num_train_tokens: int
    num_dev_tokens: int
    vocab_size: int


# --------------------------------------------------------------------------
# Corpus assembly
# --------------------------------------------------------------------------


def _subsample(
    sentences: Sequence[tuple[str, ...]], budget: int
) -> list[tuple[str, ...]]:
    """Keep about ``budget`` tokens, spread evenly over the whole sequence.

    Taking a prefix instead would keep only the first sources (help topics,
    modules early in the alphabet); a seeded shuffle would tie the output to
    the `random` module's algorithm.
    """
    total = sum(map(len, sentences))
    if total <= budget:
        return list(sentences)
    kept, seen, out = 0, 0, []
    for sentence in sentences:
        seen += len(sentence)
        # Bresenham-style: keep while the kept share lags the target share.
        if (kept + len(sentence)) * total <= budget * seen:
            kept += len(sentence)
            out.append(sentence)
    return out


def _split(
    sentences: Sequence[tuple[str, ...]], num_shards: int
) -> tuple[list[list[tuple[str, ...]]], list[tuple[str, ...]]]:
    train = [s for i, s in enumerate(sentences) if i % DEV_EVERY != DEV_EVERY - 1]
    dev = [s for i, s in enumerate(sentences) if i % DEV_EVERY == DEV_EVERY - 1]
    # Round-robin, so that every shard is a representative sample of all
    # sources and a loader may read the shards in any order.
    shards = [train[k::num_shards] for k in range(num_shards)]
    return shards, dev


def _vocabulary(train: Iterable[tuple[str, ...]], min_count: int) -> list[str]:
    counts = Counter(token for sentence in train for token in sentence)
    frequent = [(token, n) for token, n in counts.items() if n >= min_count]
    # Descending frequency: a log-uniform candidate sampler assumes it.
    frequent.sort(key=lambda item: (-item[1], item[0]))
    return [*SPECIAL_TOKENS, *(t for t, _ in frequent if t not in SPECIAL_TOKENS)]


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(line + "\n" for line in lines)
    path.write_text(text, encoding="utf-8", newline="\n")


def _shard_name(index: int) -> str:
    return f"shard-{index:05d}.txt"


def _write_corpus(
    directory: Path, params: dict, sentences: Sequence[tuple[str, ...]]
) -> dict:
    """Write shards, vocabulary and manifest into ``directory``; return the manifest."""
    budget = params["max_tokens"]
    if budget is not None:
        # max_tokens is about train; dev comes on top in the 5:1 ratio.
        sentences = _subsample(sentences, budget * DEV_EVERY // (DEV_EVERY - 1))
    shards, dev = _split(sentences, params["num_shards"])
    for index, shard in enumerate(shards):
        _write_lines(directory / "train" / _shard_name(index), map(" ".join, shard))
    _write_lines(directory / "dev" / _shard_name(0), map(" ".join, dev))
    train = [s for shard in shards for s in shard]
    vocab = _vocabulary(train, params["min_count"])
    _write_lines(directory / VOCAB, vocab)
    manifest = _manifest(params, train, dev, vocab)
    # Written last: only a directory with a manifest counts as a build.
    _write_lines(directory / MANIFEST, [json.dumps(manifest, indent=2, sort_keys=True)])
    return manifest


def _manifest(
    params: dict,
    train: Sequence[tuple[str, ...]],
    dev: Sequence[tuple[str, ...]],
    vocab: Sequence[str],
) -> dict:
    return {
        "params": params,
        # Informational only: a corpus built by another Python stays valid.
        "python": sys.version.split()[0],
        "counts": {
            "num_train_sentences": len(train),
            "num_dev_sentences": len(dev),
            "num_train_tokens": sum(map(len, train)),
            "num_dev_tokens": sum(map(len, dev)),
            "vocab_size": len(vocab),
        },
    }


# --------------------------------------------------------------------------
# On-disk state
# --------------------------------------------------------------------------

_OWN_ENTRIES = frozenset({"train", "dev", VOCAB, MANIFEST})


def _corpus_at(root: Path, counts: dict) -> DefaultCorpus:
    return DefaultCorpus(
        root=root,
        train_glob=str(root / "train" / SHARD_PATTERN),
        dev_glob=str(root / "dev" / SHARD_PATTERN),
        vocab=root / VOCAB,
        **counts,
    )


def _load_complete(root: Path, params: dict) -> DefaultCorpus | None:
    """The build at ``root`` if it is complete and made with ``params``."""
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        if manifest["params"] != params:
            return None
        corpus = _corpus_at(root, manifest["counts"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    expected = [root / "train" / _shard_name(i) for i in range(params["num_shards"])]
    expected += [root / "dev" / _shard_name(0), corpus.vocab]
    return corpus if all(path.is_file() for path in expected) else None


def _check_replaceable(root: Path) -> None:
    # A rebuild replaces root wholesale: never for a directory we did not make.
    if not root.exists():
        return
    if not root.is_dir():
        raise FileExistsError(f"{root} exists and is not a directory")
    foreign = sorted(p.name for p in root.iterdir() if p.name not in _OWN_ENTRIES)
    if foreign:
        raise FileExistsError(
            f"{root} holds files that are not part of a corpus build "
            f"({', '.join(foreign[:3])}); refusing to replace it"
        )


def _params(min_count: int, num_shards: int, max_tokens: int | None) -> dict:
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1 or None, got {max_tokens}")
    return {
        "format_version": FORMAT_VERSION,
        "min_count": min_count,
        "num_shards": num_shards,
        "max_tokens": max_tokens,
    }


def build_default_corpus(
    root: str | os.PathLike,
    *,
    min_count: int = DEFAULT_MIN_COUNT,
    num_shards: int = DEFAULT_NUM_SHARDS,
    max_tokens: int | None = DEFAULT_MAX_TOKENS,
) -> DefaultCorpus:
    """Build the default corpus under ``root`` unless it is already there.

    ``min_count``: least training count for a token to enter the vocabulary.
    ``num_shards``: number of training shard files.
    ``max_tokens``: approximate cap on training tokens (``None``: no cap);
    sentences are then subsampled evenly across all sources.

    A complete build made with the same parameters is returned as is.
    Otherwise the corpus is written into a hidden sibling directory and
    renamed into place, so an interrupted build never looks complete.
    Raises ``FileExistsError`` if ``root`` holds anything but a corpus.
    """
    root = Path(root).absolute()
    params = _params(min_count, num_shards, max_tokens)
    corpus = _load_complete(root, params)
    if corpus is not None:
        return corpus
    _check_replaceable(root)
    # Another process (e.g. a second training rank) may build it at the same time.
    with atomic_directory(root, concurrent=True, keep_existing=lambda r: _load_complete(r, params) is not None) as tmp:
        manifest = _write_corpus(tmp, params, extract_sentences())
    corpus = _load_complete(root, params) or _corpus_at(root, manifest["counts"])
    return corpus


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reader.default_corpus",
        description="Build the default ELMo pretraining corpus from CPython's "
        "own documentation (no download needed).",
    )
    parser.add_argument("out_dir", type=Path, help="directory to build into")
    parser.add_argument("--min-count", type=int, default=DEFAULT_MIN_COUNT)
    parser.add_argument("--num-shards", type=int, default=DEFAULT_NUM_SHARDS)
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=DEFAULT_MAX_TOKENS,
        help="approximate cap on training tokens; 0 for no cap",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: build, then print a one-line summary."""
    args = _parse_args(argv)
    start = time.perf_counter()
    corpus = build_default_corpus(
        args.out_dir,
        min_count=args.min_count,
        num_shards=args.num_shards,
        max_tokens=args.max_tokens or None,
    )
    print(
        f"{corpus.root}: train {corpus.num_train_sentences} sentences / "
        f"{corpus.num_train_tokens} tokens, dev {corpus.num_dev_sentences} / "
        f"{corpus.num_dev_tokens}, vocab {corpus.vocab_size} "
        f"({time.perf_counter() - start:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
