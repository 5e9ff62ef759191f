"""Named entities in text with a NER export: `pipeline("ner", model)`.

    ner = luke_static.pipeline("ner", "output/ner/inference")
    ner("Peter Blackburn visited Brussels .")
    # [{'text': 'Peter Blackburn', 'label': 'PER', 'start': 0, 'end': 15, 'score': 0.97},
    #  {'text': 'Brussels', 'label': 'LOC', 'start': 24, 'end': 32, 'score': 0.99}]

A sentence is a string whose words are separated by spaces (CoNLL's
tokens: punctuation apart from words), or a list of words. Sentences passed
together form one document: each is encoded with the others around it as
context, as in training, and an empty sentence ends a document. Entities
carry character offsets into the sentence (into its words joined by single
spaces, for a list of words) and the probability of their label.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from luke_static.ner.data import Sentence, SpanSettings, encode, feature_arrays, scored_entities
from luke_static.pipelines import Pipeline, as_list
from reader.chunks import iob2_tags
from reader.text_file import numbered_lines

_WORD = re.compile(r"\S+")


class NerPipeline(Pipeline):
    """Entity spans and types (`LukeForEntitySpanClassification`) of sentences in documents."""

    task = "ner"
    head_task = "entity_span_classification"
    input_format = ("text: one sentence per line, words separated by spaces (CoNLL's tokens); a blank line "
                    "ends a document")
    default_settings = dataclasses.asdict(SpanSettings())

    def __call__(self, sentences: str | list) -> list:
        """The entities of one sentence, or a list of entity lists for a list of sentences (one document;
        an empty sentence ends it)."""
        items, single = as_list(sentences, str)
        words = [_words(item) for item in items]
        found = self._entities([w for w, _ in words])
        results = [[{"text": _text(item)[starts[a]:starts[b - 1] + len(ws[b - 1])], "label": label,
                     "start": starts[a], "end": starts[b - 1] + len(ws[b - 1]), "score": round(score, 6)}
                    for (label, a, b), score in sorted(spans.items(), key=lambda kv: kv[0][1])]
                   for item, (ws, starts), spans in zip(items, words, found)]
        return results[0] if single else results

    def _entities(self, sentences: list[list[str]]) -> list[dict]:
        """{(type, first word, end word): probability} of each sentence (empty ones end a document)."""
        document, members = 0, []
        for k, words in enumerate(sentences):
            if words:
                members.append((k, Sentence(words, set(), document)))
            else:
                document += 1
        found: list[dict] = [{} for _ in sentences]
        if not members:
            return found
        settings = SpanSettings(**self.settings)
        encoded = encode([s for _, s in members], self.tokenizer, settings, self.labels)
        if encoded.features:
            logits = self.run(feature_arrays(encoded.features, settings, self.tokenizer))["logits"]
            for (k, _), spans in zip(members, scored_entities(encoded, logits, self.labels)):
                found[k] = spans
        return found

    def read(self, path: str | Path) -> list[str]:
        return [line for _, line in numbered_lines(path, "input")]

    def record_of(self, item: str, result: list) -> dict | None:
        if not item.split():
            return None  # a document boundary
        words, starts = _words(item)
        spans = [(e["label"], starts.index(e["start"]), _word_end(starts, words, e["end"])) for e in result]
        return {"text": item, "entities": result, "tags": iob2_tags(spans, len(words))}


def _words(sentence: str | list[str]) -> tuple[list[str], list[int]]:
    """A sentence's words and each one's character offset in `_text(sentence)`."""
    matches = list(_WORD.finditer(_text(sentence)))
    return [m.group() for m in matches], [m.start() for m in matches]


def _text(sentence: str | list[str]) -> str:
    return sentence if isinstance(sentence, str) else " ".join(sentence)


def _word_end(starts: list[int], words: list[str], end: int) -> int:
    return next(i + 1 for i, (s, w) in enumerate(zip(starts, words)) if s + len(w) == end)


PIPELINE = NerPipeline
