"""Entities (or tags) of words with a token-classification export: `pipeline("token_classification", model)`.

    tagger = luke_static.pipeline("token_classification", "output/ner_token/inference")
    tagger("Peter Blackburn visited Brussels .")
    # [{'text': 'Peter Blackburn', 'label': 'PER', 'start': 0, 'end': 15, 'score': 0.97},
    #  {'text': 'Brussels', 'label': 'LOC', 'start': 24, 'end': 32, 'score': 0.99}]

Serves `sh run.sh ner -o model.head=token` runs and converted HF
`LukeForTokenClassification` checkpoints. Input and output are the `ner`
pipeline's: sentences of space-separated words (or lists of words), entities
with character offsets and their probability (the mean of their words' tag
probabilities). Each word is tagged at its first subword; with IOB labels
(`B-PER`, `I-PER`, `O`) entities are read from the tags, with other labels
(part-of-speech tags, say) every word is an item of its own with its tag.
"""

from __future__ import annotations

from luke_static.ner.data import Sentence
from luke_static.ner.predict import NerPipeline
from luke_static.ner.tokens import encode_tagged, is_tag_set, tagged_arrays, tagged_entities, word_tags


class TokenClassificationPipeline(NerPipeline):
    """Tags per word (`LukeForTokenClassification`), read back into entity spans."""

    task = "token_classification"
    head_task = "token_classification"
    input_format = "text: one sentence per line, words separated by spaces"
    default_settings = {"max_seq_length": 512}

    def _entities(self, sentences: list[list[str]]) -> list[dict]:
        """{(label, first word, end word): probability} of each sentence."""
        members = [(k, Sentence(words)) for k, words in enumerate(sentences) if words]
        found: list[dict] = [{} for _ in sentences]
        if not members:
            return found
        rows = encode_tagged([s for _, s in members], self.tokenizer, self.settings["max_seq_length"], None)
        logits = self.run(tagged_arrays(rows, self.tokenizer))["logits"]
        for (k, _), tags in zip(members, word_tags(rows, logits, self.labels)):
            if is_tag_set(self.labels):
                found[k] = tagged_entities(tags)
            else:
                found[k] = {(tag, i, i + 1): p for i, (tag, p) in enumerate(tags)}
        return found


PIPELINE = TokenClassificationPipeline
