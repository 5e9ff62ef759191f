"""A built-in English corpus for ELMo pretraining, derived from CPython itself.

The pretraining job has to run out of the box: no download, no user data.
Every CPython installation ships two bodies of English prose that serve:

* ``pydoc_data.topics.topics``, the text behind ``help("for")`` and friends;
* the docstrings of the standard library's ``.py`` files, read with ``ast``
  so that no standard-library module is imported or executed.

Code-like lines (doctests, literal blocks, tables) are dropped, the remaining
prose is split into sentences, tokenized, filtered by length and
de-duplicated, and written as::

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
import ast
import functools
import itertools
import json
import os
import re
import secrets
import shutil
import sys
import sysconfig
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

__all__ = [
    "DefaultCorpus",
    "SPECIAL_TOKENS",
    "build_default_corpus",
    "extract_sentences",
    "main",
    "text_to_sentences",
    "tokenize",
]

# Bump whenever extraction or layout changes, so that older builds on disk
# are rebuilt instead of being silently reused.
FORMAT_VERSION = 1

SPECIAL_TOKENS = ("<S>", "</S>", "<UNK>")
MIN_SENTENCE_TOKENS = 3
MAX_SENTENCE_TOKENS = 60
DEV_EVERY = 6  # sentence i goes to dev when i % DEV_EVERY == DEV_EVERY - 1
DEFAULT_MIN_COUNT = 3
DEFAULT_NUM_SHARDS = 5
# Keeps an epoch to minutes for a small LM should a future Python ship far
# more documentation; CPython 3.11 yields ~0.23M train tokens, well below.
DEFAULT_MAX_TOKENS = 1_500_000

MANIFEST = "corpus.json"
VOCAB = "vocab.txt"
SHARD_PATTERN = "shard-*.txt"

# Tests and the IDE are not representative prose and would dominate the
# docstring counts; site-packages is not the standard library at all.
_SKIPPED_DIRS = frozenset(
    {"site-packages", "test", "tests", "idlelib", "lib2to3", "__pycache__"}
)
_DOCUMENTED_NODES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


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
# Sources
# --------------------------------------------------------------------------


def _topic_texts() -> Iterator[str]:
    from pydoc_data.topics import topics

    for name in sorted(topics):
        yield topics[name]


def _stdlib_files(stdlib_dir: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(stdlib_dir):
        # os.walk honours in-place edits: prune and fix the visiting order.
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_DIRS)
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield Path(dirpath, name)


def _file_docstrings(path: Path) -> list[str]:
    try:
        source = path.read_bytes()
        # Old modules contain invalid escape sequences; their warnings are noise.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source, filename=str(path))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return []
    docstrings = (
        ast.get_docstring(node)
        for node in ast.walk(tree)
        if isinstance(node, _DOCUMENTED_NODES)
    )
    return [doc for doc in docstrings if doc]


def _docstring_texts() -> Iterator[str]:
    stdlib_dir = Path(sysconfig.get_paths()["stdlib"])
    for path in _stdlib_files(stdlib_dir):
        yield from _file_docstrings(path)


# --------------------------------------------------------------------------
# Text -> sentences
# --------------------------------------------------------------------------

_RULE_RE = re.compile(r"[-=~^*#+_:|. ]{3,}")  # section underlines, table rules
_TABLE_ROW_PREFIXES = ("|", "+-", "+=")
_DOCTEST_PREFIXES = (">>>", "...")
_SENTENCE_BREAK_RE = re.compile(r"(?<=[.!?])\s+")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.")
_SENTENCE_END = (".", "!", "?", ":")
_ROLE_RE = re.compile(r":[\w:.-]+:(?=`)")  # Sphinx roles such as :func:
_EMPHASIS_RE = re.compile(r"\*{1,2}([^\s*](?:[^*]*[^\s*])?)\*{1,2}")
# Typographic quotes become ASCII ones; backticks only mark up literals.
_QUOTES = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "`": None}
)
# Words may carry an apostrophe suffix ("don't", "python's") and start with
# a letter or underscore, so identifiers such as __init__ stay whole.
_TOKEN_RE = re.compile(r"[^\W\d]\w*(?:'\w+)*|\d+(?:\.\d+)*|[^\w\s]")
# Quotes mark literals in running prose ('the "for" statement'), so they do
# not count against a sentence; other symbols do.
_QUOTE_TOKENS = frozenset({'"', "'"})
_MIN_WORD_FRACTION = 0.5


def _is_code_like(stripped: str) -> bool:
    if stripped.startswith(_TABLE_ROW_PREFIXES):
        return True
    return _RULE_RE.fullmatch(stripped) is not None


def _prose_paragraphs(text: str) -> Iterator[str]:
    """Yield the prose paragraphs of reST-ish text, wrapped lines joined.

    Dropped: doctest examples with their output, and any block indented
    deeper than a line ending in ':' -- that is how both docstrings
    ('Example::') and the rendered help topics introduce code and grammar.
    """
    paragraph: list[str] = []
    block_indent: int | None = None  # skipping lines indented deeper than this
    in_doctest = False

    def flush() -> Iterator[str]:
        if paragraph:
            yield " ".join(paragraph)
            paragraph.clear()

    for line in text.expandtabs().splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if block_indent is not None:
            if not stripped or indent > block_indent:
                yield from flush()
                continue
            block_indent = None
        if in_doctest:
            in_doctest = bool(stripped)  # doctest output runs to a blank line
            continue
        if stripped.startswith(_DOCTEST_PREFIXES):
            in_doctest = True
            yield from flush()
            continue
        if not stripped or _is_code_like(stripped):
            yield from flush()
            continue
        paragraph.append(stripped)
        if stripped.endswith(":"):
            block_indent = indent
    yield from flush()


def _split_sentences(paragraph: str) -> list[str]:
    sentences: list[str] = []
    for piece in _SENTENCE_BREAK_RE.split(paragraph):
        if sentences and sentences[-1].lower().endswith(_ABBREVIATIONS):
            sentences[-1] += " " + piece
        else:
            sentences.append(piece)
    return sentences


def _strip_markup(sentence: str) -> str:
    if sentence.endswith("::"):  # reST's literal-block marker reads as ':'
        sentence = sentence[:-1]
    sentence = _ROLE_RE.sub("", sentence)
    sentence = _EMPHASIS_RE.sub(r"\1", sentence)
    return sentence.translate(_QUOTES)


def tokenize(text: str) -> list[str]:
    """Lower-case ``text`` and split it into words, numbers and punctuation.

    >>> tokenize("Don't call __init__() twice, it's 3.14!")
    ["don't", 'call', '__init__', '(', ')', 'twice', ',', "it's", '3.14', '!']
    """
    return _TOKEN_RE.findall(text.lower().translate(_QUOTES))


def _is_prose(tokens: Sequence[str]) -> bool:
    if not MIN_SENTENCE_TOKENS <= len(tokens) <= MAX_SENTENCE_TOKENS:
        return False
    unquoted = [token for token in tokens if token not in _QUOTE_TOKENS]
    words = sum(token[0].isalpha() for token in unquoted)
    return words >= _MIN_WORD_FRACTION * len(unquoted)


def text_to_sentences(text: str) -> list[tuple[str, ...]]:
    """Tokenized prose sentences of one document, in order, duplicates kept.

    Only sentences that end like sentences ('.', '!', '?', ':') are kept:
    headings, signatures and list fragments do not, and they are not prose.
    """
    sentences = []
    for paragraph in _prose_paragraphs(text):
        for sentence in _split_sentences(paragraph):
            if not sentence.endswith(_SENTENCE_END):
                continue
            tokens = tuple(tokenize(_strip_markup(sentence)))
            if _is_prose(tokens):
                sentences.append(tokens)
    return sentences


def _unique(sentences: Iterable[tuple[str, ...]]) -> Iterator[tuple[str, ...]]:
    seen: set[tuple[str, ...]] = set()
    for sentence in sentences:
        if sentence not in seen:
            seen.add(sentence)
            yield sentence


@functools.lru_cache(maxsize=1)
def extract_sentences() -> tuple[tuple[str, ...], ...]:
    """All unique sentences from the help topics, then the stdlib docstrings.

    Cached: parsing the standard library dominates the build time, and the
    result cannot change while the interpreter runs.
    """
    texts = itertools.chain(_topic_texts(), _docstring_texts())
    return tuple(_unique(s for text in texts for s in text_to_sentences(text)))


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


def _hidden_sibling(root: Path, tag: str) -> Path:
    # Unique per process and call, so that concurrent builders never collide;
    # hidden, so that nobody takes it for a corpus.
    return root.with_name(f".{root.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}")


def _install(staging: Path, root: Path) -> None:
    """Move ``staging`` to ``root``, replacing an outdated or partial build."""
    if not root.exists():
        os.replace(staging, root)
        return
    # Directories cannot be renamed over non-empty ones: swap, then delete.
    retired = _hidden_sibling(root, "old")
    os.replace(root, retired)
    os.replace(staging, root)
    shutil.rmtree(retired, ignore_errors=True)


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
    root.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkdtemp: its 0700 mode would end up on the final corpus.
    staging = _hidden_sibling(root, "tmp")
    staging.mkdir()
    try:
        manifest = _write_corpus(staging, params, extract_sentences())
        # Another process (e.g. a second training rank) may have won the race.
        corpus = _load_complete(root, params)
        if corpus is None:
            _install(staging, root)
            corpus = _corpus_at(root, manifest["counts"])
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already if installed
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
