"""English prose from the Python installation itself, as tokenized sentences.

Two bodies of text ship with every CPython: `pydoc_data.topics.topics` (the
text behind `help("for")`) and the docstrings of the standard library's `.py`
files, read with `ast` so that nothing is imported or executed. Code-like
lines (doctests, literal blocks, tables) are dropped; the prose is split into
sentences, tokenized (lowercase words, numbers, punctuation), filtered by
length and de-duplicated. `reader.default_corpus` turns this into shards.
"""

from __future__ import annotations

import ast
import functools
import itertools
import os
import re
import sysconfig
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

MIN_SENTENCE_TOKENS = 3
MAX_SENTENCE_TOKENS = 60

# Tests and the IDE are not representative prose and would dominate the
# docstring counts; site-packages is not the standard library at all.
_SKIPPED_DIRS = frozenset(
    {"site-packages", "test", "tests", "idlelib", "lib2to3", "__pycache__"}
)
_DOCUMENTED_NODES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


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
