"""Masked words and entities filled by a masked-LM model: `pipeline("fill_mask", model)`.

    fill = luke_static.pipeline("fill_mask", "models/luke-base")   # a converted LukeForMaskedLM, or its export
    fill("Beyoncé lives in <mask>.", entity_spans=[(0, 7)])
    # {'words': [[{'text': 'Paris', 'score': 0.12}, …]], 'entities': [[{'text': 'Beyoncé', 'score': 0.61}, …]]}

`<mask>` in the text is one masked word (it takes the space before it, as
the tokenizer files declare); each entity span (character offsets, end
exclusive) is entered as a `[MASK]` entity. The result ranks the `top_k`
words for each `<mask>` and entities (titles) for each span, with their
probabilities. The published pretrained LUKE models (`studio-ousia/luke-base`,
`-large`) are masked LMs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import ConfigError
from luke_static.pipelines import Pipeline, as_list, softmax
from reader.text_file import numbered_lines


class FillMaskPipeline(Pipeline):
    """Word logits at every `<mask>` and entity logits at every `[MASK]` entity (`LukeForMaskedLM`)."""

    task = "fill_mask"
    head_task = "masked_lm"
    input_format = "text: one text per line with <mask> tokens (no entity spans)"
    batch_size = 4

    def __call__(self, inputs: str | list, entity_spans: list[tuple[int, int]] | None = None,
                 top_k: int = 5) -> dict | list[dict]:
        """The ranked candidates for one text (with its `entity_spans`), or for each of a list of texts."""
        texts, single = as_list(inputs, str)
        if entity_spans and not single:
            raise ConfigError("entity_spans go with one text: call fill_mask(text, entity_spans=...) per text")
        encodings = [self.tokenizer.encode(text, entity_spans=entity_spans or None) for text in texts]
        if any(self.tokenizer.mask_id not in e.input_ids and not e.entity_ids for e in encodings):
            raise ConfigError("nothing to fill: a text has no <mask> and no entity spans")
        titles = {index: title for title, index in self.tokenizer.entity_vocab.items()}
        out = self.run(self.tokenizer.pad(encodings)) if encodings else {}
        results = []
        for i, encoding in enumerate(encodings):
            words = [_top(out["logits"][i, k], top_k, lambda t: self.tokenizer.decode([t]).strip())
                     for k, token in enumerate(encoding.input_ids) if token == self.tokenizer.mask_id]
            entities = [_top(out["entity_logits"][i, k], top_k, titles.get) for k in range(len(encoding.entity_ids))]
            results.append({"words": words, "entities": entities})
        return results[0] if single else results

    def read(self, path: str | Path) -> list[str]:
        return [line for _, line in numbered_lines(path, "input") if line.strip()]

    def record_of(self, item: str, result: dict) -> dict:
        return {"text": item, **result}


def _top(logits: np.ndarray, k: int, name) -> list[dict]:
    probabilities = softmax(logits)
    return [{"text": name(int(i)), "score": round(float(probabilities[i]), 6)} for i in np.argsort(-probabilities)[:k]]


PIPELINE = FillMaskPipeline
