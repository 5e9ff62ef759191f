"""Plain tokenized text: one whitespace-tokenized sentence per line, read in batches.

`read_batches` keeps the file's order (what carrying state across batches
needs); `sorted_batches` reads a window of lines at a time and groups them by
length, so a batch pads little (AllenNLP's bucketing), keeping each
sentence's line index.
"""

from __future__ import annotations

from pathlib import Path

from reader.text_file import numbered_lines


def read_batches(path: str | Path, batch_size: int, split=str.split):
    """Yields (first line index, [tokens per line]) in batches of consecutive lines; `split` cuts a
    line into words (whitespace; or a `reader.segment.Segmenter` for raw text)."""
    batch, start = [], 0
    for _, words in _sentences(path, split):
        batch.append(words)
        if len(batch) == batch_size:
            yield start, batch
            start, batch = start + len(batch), []
    if batch:
        yield start, batch


def sorted_batches(path: str | Path, max_tokens: int, max_sentences: int, window: int = 8192, split=str.split):
    """Yields ([line indices], [tokens per line]) batches of similar lengths.

    Lines are read `window` at a time, sorted by length, and cut into batches
    of at most `max_sentences` sentences and `max_tokens` padded tokens
    (sentences × (longest + 2): the biLM adds the two boundaries); a longer
    sentence goes alone. Memory stays bounded by the window.
    """
    buffer = []
    for item in _sentences(path, split):
        buffer.append(item)
        if len(buffer) == window:
            yield from _by_length(buffer, max_tokens, max_sentences)
            buffer = []
    yield from _by_length(buffer, max_tokens, max_sentences)


def _by_length(items: list, max_tokens: int, max_sentences: int):
    batch: list = []
    for index, words in sorted(items, key=lambda item: len(item[1])):
        # Sorted, so this sentence is the longest of the batch it would join.
        if batch and (len(batch) == max_sentences or (len(batch) + 1) * (len(words) + 2) > max_tokens):
            yield [i for i, _ in batch], [w for _, w in batch]
            batch = []
        batch.append((index, words))
    if batch:
        yield [i for i, _ in batch], [w for _, w in batch]


def _sentences(path: str | Path, split=str.split):
    """(0-based line index, tokens) of every line; a blank line is an empty sentence (bilm-tf reads it as
    `<S> </S>`), so every line keeps its index."""
    for lineno, line in numbered_lines(path, "input file"):
        yield lineno - 1, split(line)
