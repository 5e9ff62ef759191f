"""LUKE's tokenizer: byte-level BPE words (HF `tokenizers`, in Rust) plus entity inputs.

Turns text and character entity spans (optionally with Wikipedia titles)
into every input of the model, following transformers' `LukeTokenizer`:

- The text is cut at every span boundary (a space before a boundary goes
  with the following piece) and the pieces are BPE-encoded one by one, which
  yields each entity's token span.
- `<s> A </s>` or `<s> A </s></s> B </s>`; token types all 0; entity
  positions offset by 1 (pair entities by len(A) + 3).
- An entity is its title's id, `[UNK]` for an unknown title, or `[MASK]`
  without titles; `entity_position_ids` lists its first 30 token positions,
  padded with -1.
- `task="entity_classification"`: `<ent>` before and after the single span,
  whose positions then cover both markers.
- `task="entity_pair_classification"`: `<ent>` around the head span and
  `<ent2>` around the tail span, entities `[MASK]` and `[MASK2]`, positions
  covering the markers.
- `task="entity_span_classification"`: every span is a `[MASK]` entity, and
  the encoding adds each one's first and last token position
  (`entity_start_positions`, `entity_end_positions`).
- Truncation removes tokens from the end (`longest_first` between a pair);
  entities whose span no longer fits are dropped.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from engine.errors import DataError

ENTITY_VOCAB_FILES = ("entity_vocab.json", "entity_vocab.tsv", "entity_vocab.jsonl")
TASKS = (None, "entity_classification", "entity_pair_classification", "entity_span_classification")


@dataclass
class Tokens:
    """Word tokens of a text: ids, character offsets [start, end) and entity spans in tokens."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    spans: list[tuple[int, int]] | None = None


@dataclass
class Encoding:
    """One example's inputs, unpadded (lists), as `LukeTokenizer` returns them."""

    input_ids: list[int]
    token_type_ids: list[int]
    entity_ids: list[int] = field(default_factory=list)
    entity_position_ids: list[list[int]] = field(default_factory=list)
    entity_token_type_ids: list[int] = field(default_factory=list)
    entity_start_positions: list[int] = field(default_factory=list)  # entity_span_classification
    entity_end_positions: list[int] = field(default_factory=list)


MASK_TOKEN = "<mask>"
_MASK_RE = re.compile(r" ?" + re.escape(MASK_TOKEN))


class LukeTokenizer:
    """Words by byte-level BPE, entities by title; see the module docstring for the rules."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], entity_vocab: dict[str, int],
                 add_prefix_space: bool = False, task: str | None = None, max_entity_length: int = 32,
                 max_mention_length: int = 30, added_tokens: dict[str, int] | None = None):
        if task not in TASKS:
            raise ValueError(f"task {task!r} is not supported (one of {', '.join(map(str, TASKS))})")
        self.vocab = dict(vocab)
        for token, index in (added_tokens or {}).items():
            self.vocab.setdefault(token, index)
        for token in ("<ent>", "<ent2>"):  # appended as transformers does when the files lack them
            self.vocab.setdefault(token, len(self.vocab))
        self.bpe = Tokenizer(models.BPE(vocab=dict(vocab), merges=list(merges), continuing_subword_prefix="",
                                        end_of_word_suffix="", fuse_unk=False))
        self.bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
        self._as_written = pre_tokenizers.ByteLevel(add_prefix_space=False)
        self.bpe.decoder = decoders.ByteLevel()
        self.entity_vocab = entity_vocab
        self.task = task
        self.max_entity_length = {"entity_classification": 1, "entity_pair_classification": 2}.get(
            task, max_entity_length)
        self.max_mention_length = max_mention_length
        ids = {t: self._special(t) for t in ("<s>", "</s>", "<pad>", "<ent>", "<ent2>")}
        self.mask_id = self.vocab.get(MASK_TOKEN)
        self.cls_id, self.sep_id, self.pad_id = ids["<s>"], ids["</s>"], ids["<pad>"]
        self.ent_id, self.ent2_id = ids["<ent>"], ids["<ent2>"]
        self.entity_unk_id = self._entity_special("[UNK]")
        self.entity_pad_id = self._entity_special("[PAD]")
        self.entity_mask_id = self._entity_special("[MASK]")
        # Only the pair task needs it; older entity vocabularies lack it.
        self.entity_mask2_id = self._entity_special("[MASK2]") if task == "entity_pair_classification" else None

    @classmethod
    def from_dir(cls, directory: str | Path, **overrides) -> "LukeTokenizer":
        """Reads vocab.json, merges.txt, an entity vocabulary and tokenizer_config.json if present."""
        directory = Path(directory)
        try:
            vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
            merges_text = (directory / "merges.txt").read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise DataError(f"{directory}: no {Path(exc.filename).name} (a LUKE/RoBERTa tokenizer needs "
                            "vocab.json and merges.txt)") from None
        merges = [tuple(line.split()) for line in merges_text.splitlines()
                  if line.strip() and not line.startswith("#version")]
        settings = {}
        if (directory / "tokenizer_config.json").is_file():
            config = json.loads((directory / "tokenizer_config.json").read_text())
            settings = {k: config[k] for k in ("add_prefix_space", "task", "max_entity_length", "max_mention_length")
                        if k in config}
        added = {}
        if (directory / "added_tokens.json").is_file():
            added = json.loads((directory / "added_tokens.json").read_text())
        return cls(vocab, merges, read_entity_vocab(directory), added_tokens=added, **{**settings, **overrides})

    # -- encoding ------------------------------------------------------------------

    def encode(self, text: str, entity_spans=None, entities=None, text_pair: str | None = None,
               entity_spans_pair=None, entities_pair=None, max_length: int | None = None) -> Encoding:
        """Inputs for one example (unpadded). Spans are (start, end) character offsets."""
        ids, spans = self._pieces(text, entity_spans)
        entity_ids = self._entity_ids(entity_spans, entities)
        if self.task == "entity_classification":
            if not entity_spans or len(entity_spans) != 1:
                raise ValueError("task='entity_classification' takes exactly one entity span")
            ids, spans = _marked(ids, spans, [self.ent_id])
            entity_ids = [self.entity_mask_id]
        elif self.task == "entity_pair_classification":
            if not entity_spans or len(entity_spans) != 2:
                raise ValueError("task='entity_pair_classification' takes two entity spans (head, tail)")
            (a, b), (c, d) = entity_spans
            if a < d and c < b:
                raise ValueError(f"the head span ({a}, {b}) and the tail span ({c}, {d}) overlap")
            ids, spans = _marked(ids, spans, [self.ent_id, self.ent2_id])
            entity_ids = [self.entity_mask_id, self.entity_mask2_id]
        elif self.task == "entity_span_classification" and not entity_spans:
            raise ValueError("task='entity_span_classification' takes at least one entity span")
        pair_ids, pair_spans = self._pieces(text_pair, entity_spans_pair) if text_pair is not None else (None, None)
        pair_entity_ids = self._entity_ids(entity_spans_pair, entities_pair) if text_pair is not None else None
        if max_length is not None:
            ids, pair_ids = self._truncate(ids, pair_ids, max_length)
        return self._assemble(ids, spans, entity_ids, pair_ids, pair_spans, pair_entity_ids)

    def _assemble(self, ids, spans, entity_ids, pair_ids, pair_spans, pair_entity_ids) -> Encoding:
        words = [self.cls_id, *ids, self.sep_id]
        if pair_ids is not None:
            words += [self.sep_id, *pair_ids, self.sep_id]
        keep = [(e, s) for e, s in zip(entity_ids or [], spans or []) if s[1] <= len(ids)]
        keep_pair = [(e, s) for e, s in zip(pair_entity_ids or [], pair_spans or []) if s[1] <= len(pair_ids or [])]
        keep, keep_pair = _truncate_pair(keep, keep_pair or None, self.max_entity_length)
        spans = [(s + 1, e + 1) for _, (s, e) in keep]
        spans += [(s + len(ids) + 3, e + len(ids) + 3) for _, (s, e) in keep_pair or []]
        entity = [e for e, _ in keep] + [e for e, _ in keep_pair or []]
        encoding = Encoding(words, [0] * len(words), entity, [self._positions(s) for s in spans], [0] * len(entity))
        if self.task == "entity_span_classification":
            encoding.entity_start_positions = [s for s, _ in spans]
            encoding.entity_end_positions = [e - 1 for _, e in spans]
        return encoding

    def tokenize(self, text: str, spans=None) -> "Tokens":
        """Token ids and character offsets of `text` cut at the span boundaries, and the spans in tokens."""
        for start, end in spans or []:
            if not 0 <= start < end <= len(text):
                raise ValueError(f"span ({start}, {end}) is not inside the text ({len(text)} characters)")
        ids, offsets, cur, token_at = [], [], 0, {}
        for position in sorted(set(itertools.chain(*(spans or [])))):
            cut = position - 1 if position > 0 and text[position - 1] == " " else position
            if cut != cur:
                self._bpe(text[cur:cut], cur, ids, offsets)
                cur = cut
            token_at[position] = len(ids)
        self._bpe(text[cur:], cur, ids, offsets)
        token_spans = [(token_at[s], token_at[e]) for s, e in spans] if spans else None
        return Tokens(ids, offsets, token_spans)

    def bpe_ids(self, text: str) -> list[int]:
        """Token ids of `text` exactly as written: no space added in front, whatever `add_prefix_space` says."""
        pieces = self._as_written.pre_tokenize_str(text)
        return [token.id for piece, _ in pieces for token in self.bpe.model.tokenize(piece)]

    def _pieces(self, text: str, spans) -> tuple[list[int], list[tuple[int, int]] | None]:
        tokens = self.tokenize(text, spans)
        return tokens.ids, tokens.spans

    def _bpe(self, text: str, start: int, ids: list, offsets: list) -> None:
        # `<mask>` is one token that takes the space before it (the `lstrip` of
        # RoBERTa's and LUKE's tokenizer files); the text on either side is
        # encoded as a piece of its own, as transformers does.
        at = 0
        for match in _MASK_RE.finditer(text):
            if self.mask_id is None:
                raise DataError(f"the text has {MASK_TOKEN} but the word vocabulary does not")
            self._bpe_piece(text[at:match.start()], start + at, ids, offsets)
            ids.append(self.mask_id)
            offsets.append((start + match.end() - len(MASK_TOKEN), start + match.end()))
            at = match.end()
        self._bpe_piece(text[at:], start + at, ids, offsets)

    def _bpe_piece(self, text: str, start: int, ids: list, offsets: list) -> None:
        if text:
            encoding = self.bpe.encode(text, add_special_tokens=False)
            ids += encoding.ids
            offsets += [(start + a, start + b) for a, b in encoding.offsets]

    def _entity_ids(self, spans, titles) -> list[int] | None:
        if not spans:
            return None
        if titles is None:
            return [self.entity_mask_id] * len(spans)
        if len(titles) != len(spans):
            raise ValueError(f"{len(titles)} entity titles for {len(spans)} spans")
        return [self.entity_vocab.get(t, self.entity_unk_id) for t in titles]

    def _positions(self, span: tuple[int, int]) -> list[int]:
        positions = list(range(*span))[: self.max_mention_length]
        return positions + [-1] * (self.max_mention_length - len(positions))

    def _truncate(self, ids, pair_ids, max_length: int):
        special = 4 if pair_ids is not None else 2
        return _truncate_pair(ids, pair_ids, max_length - special)

    # -- batching ------------------------------------------------------------------

    def pad(self, encodings: list[Encoding], max_length: int | None = None,
            max_entity_length: int | None = None) -> dict[str, np.ndarray]:
        """Stacks encodings into model feeds (right padding; to the longest when no length is given)."""
        length = max_length or max(len(e.input_ids) for e in encodings)
        entity_length = max_entity_length or max(1, max(len(e.entity_ids) for e in encodings))
        out = {"input_ids": np.full((len(encodings), length), self.pad_id, np.int64),
               "attention_mask": np.zeros((len(encodings), length), np.int64),
               "token_type_ids": np.zeros((len(encodings), length), np.int64),
               "entity_ids": np.full((len(encodings), entity_length), self.entity_pad_id, np.int64),
               "entity_attention_mask": np.zeros((len(encodings), entity_length), np.int64),
               "entity_token_type_ids": np.zeros((len(encodings), entity_length), np.int64),
               "entity_position_ids": np.full((len(encodings), entity_length, self.max_mention_length), -1, np.int64)}
        for i, e in enumerate(encodings):
            n, m = len(e.input_ids), len(e.entity_ids)
            out["input_ids"][i, :n] = e.input_ids
            out["attention_mask"][i, :n] = 1
            out["entity_ids"][i, :m] = e.entity_ids
            out["entity_attention_mask"][i, :m] = 1
            if m:
                out["entity_position_ids"][i, :m] = e.entity_position_ids
        if self.task == "entity_span_classification":
            for name in ("entity_start_positions", "entity_end_positions"):
                out[name] = np.zeros((len(encodings), entity_length), np.int64)
                for i, e in enumerate(encodings):
                    out[name][i, :len(e.entity_ids)] = getattr(e, name)
        return out

    # -- helpers -------------------------------------------------------------------

    def _special(self, token: str) -> int:
        if token not in self.vocab:
            raise DataError(f"the word vocabulary has no {token}")
        return self.vocab[token]

    def _entity_special(self, token: str) -> int:
        if token not in self.entity_vocab:
            raise DataError(f"the entity vocabulary has no {token}")
        return self.entity_vocab[token]


def _marked(ids: list[int], spans: list[tuple[int, int]], markers: list[int]):
    """`ids` with each span wrapped in its marker token, and the spans moved to cover their markers.

    Markers go in from the last span to the first, so inserting one never
    moves a span still to be marked (transformers' order).
    """
    ids, moved = list(ids), list(spans)
    for k in sorted(range(len(spans)), key=lambda k: spans[k][0], reverse=True):
        start, end = spans[k]
        ids[start:end] = [markers[k], *ids[start:end], markers[k]]
        earlier = sum(2 for j in range(len(spans)) if spans[j][0] < start)
        moved[k] = (start + earlier, end + earlier + 2)
    return ids, moved


def _truncate_pair(first: list, second: list | None, budget: int):
    """HF's `longest_first`: drop from the end of the longer sequence until both fit `budget`."""
    first = list(first)
    second = None if second is None else list(second)
    while len(first) + len(second or []) > budget:
        if second is not None and len(second) > len(first):
            second.pop()
        elif first:
            first.pop()
        else:
            second.pop()
    return first, second


def read_entity_vocab(directory: str | Path) -> dict[str, int]:
    """`entity_vocab.json` ({title: id}), `.tsv` (title<TAB>count, id = line) or `.jsonl` (LUKE's)."""
    directory = Path(directory)
    for name in ENTITY_VOCAB_FILES:
        path = directory / name
        if not path.is_file():
            continue
        if name.endswith(".json"):
            return json.loads(path.read_text(encoding="utf-8"))
        if name.endswith(".tsv"):
            lines = path.read_text(encoding="utf-8").splitlines()
            return {line.split("\t")[0]: i for i, line in enumerate(lines) if line}
        vocab = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                for title, _language in record["entities"]:
                    vocab[title] = record["id"]
        return vocab
    raise DataError(f"{directory}: no entity vocabulary ({', '.join(ENTITY_VOCAB_FILES)})")
