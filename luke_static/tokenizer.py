"""LUKE's and mLUKE's tokenizers: word pieces plus entity inputs.

Turns text and character entity spans (optionally with Wikipedia titles)
into every input of the model, following transformers' `LukeTokenizer` and
`MLukeTokenizer`. The two differ only in their word pieces (a `words`
object: `ByteLevelBPE` for LUKE, `SentencePieceWords` for mLUKE); the entity
rules below are `EntityTokenizer`'s and shared:

- The text is cut at every span boundary (a space before a boundary goes
  with the following piece) and the pieces are encoded one by one, which
  yields each entity's token span.
- `<s> A </s>` or `<s> A </s></s> B </s>`; token types all 0; entity
  positions offset by 1 (pair entities by len(A) + 3).
- An entity is its title's id, `[UNK]` for an unknown title, or `[MASK]`
  without titles; `entity_position_ids` lists its first 30 token positions,
  padded with -1. mLUKE's titles carry their language ("ja:東京", the names
  of its `entity_vocab.json`); the special entities are bare ("[MASK]").
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
- `<mask>` in a text is one token that takes the space before it; the text
  on either side is encoded as a piece of its own.

Character offsets [start, end) of every word piece point into the original
text. A piece that stands for a space covers it (BPE's `Ġ`, SentencePiece's
`▁`, which also covers a run of spaces it replaced); the `▁` SentencePiece
puts in front of every piece of text it encodes, where no space was, covers
nothing (start == end, at the next character). SentencePiece normalises
(NFKC: "，" is ","), so a piece's characters need not equal its spelling.

`load_tokenizer(directory)` picks the kind from the files a directory holds.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from engine.errors import DataError

ENTITY_VOCAB_FILES = ("entity_vocab.json", "entity_vocab.tsv", "entity_vocab.jsonl")
ENTITY_SPECIALS = ("[PAD]", "[UNK]", "[MASK]", "[MASK2]")
TASKS = (None, "entity_classification", "entity_pair_classification", "entity_span_classification")
SENTENCEPIECE_MODEL = "sentencepiece.bpe.model"
BPE_FILES = ("vocab.json", "merges.txt")
# What an mLUKE tokenizer reads from a model directory (the ones present are copied with a model).
MLUKE_TOKENIZER_FILES = (SENTENCEPIECE_MODEL, *ENTITY_VOCAB_FILES, "special_tokens_map.json", "tokenizer_config.json",
                         "added_tokens.json")
_SETTINGS = ("task", "max_entity_length", "max_mention_length")


@dataclass
class Tokens:
    """Word tokens of a text: ids, character offsets [start, end) and entity spans in tokens."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    spans: list[tuple[int, int]] | None = None


@dataclass
class Encoding:
    """One example's inputs, unpadded (lists), as transformers' tokenizers return them."""

    input_ids: list[int]
    token_type_ids: list[int]
    entity_ids: list[int] = field(default_factory=list)
    entity_position_ids: list[list[int]] = field(default_factory=list)
    entity_token_type_ids: list[int] = field(default_factory=list)
    entity_start_positions: list[int] = field(default_factory=list)  # entity_span_classification
    entity_end_positions: list[int] = field(default_factory=list)


MASK_TOKEN = "<mask>"
_MASK_RE = re.compile(r" ?" + re.escape(MASK_TOKEN))


# -- word pieces --------------------------------------------------------------------


class ByteLevelBPE:
    """RoBERTa's word pieces: byte-level BPE over `vocab.json` + `merges.txt` (HF `tokenizers`, in Rust).

    `vocab` maps every word token to its id: the BPE vocabulary, the added
    tokens, and `<ent>`/`<ent2>` appended when the files lack them.
    """

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], add_prefix_space: bool = False,
                 added_tokens: dict[str, int] | None = None):
        self.vocab = dict(vocab)
        for token, index in (added_tokens or {}).items():
            self.vocab.setdefault(token, index)
        for token in ("<ent>", "<ent2>"):  # appended as transformers does when the files lack them
            self.vocab.setdefault(token, len(self.vocab))
        self.model = Tokenizer(models.BPE(vocab=dict(vocab), merges=list(merges), continuing_subword_prefix="",
                                          end_of_word_suffix="", fuse_unk=False))
        self.model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
        self.model.decoder = decoders.ByteLevel()
        self._as_written = pre_tokenizers.ByteLevel(add_prefix_space=False)

    def token_id(self, token: str) -> int | None:
        return self.vocab.get(token)

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and character offsets (into `text`) of one piece of text."""
        encoding = self.model.encode(text, add_special_tokens=False)
        return encoding.ids, encoding.offsets

    def ids_as_written(self, text: str) -> list[int]:
        pieces = self._as_written.pre_tokenize_str(text)
        return [token.id for piece, _ in pieces for token in self.model.model.tokenize(piece)]

    def decode(self, ids: list[int]) -> str:
        return self.model.decode(ids)


class SentencePieceWords:
    """XLM-RoBERTa's word pieces: a SentencePiece model (`sentencepiece.bpe.model`), ids in fairseq's layout.

    fairseq puts `<s>` 0, `<pad>` 1, `</s>` 2, `<unk>` 3 first and shifts the
    model's pieces 3, 4, … (after its own `<unk>`, `<s>`, `</s>`) by one;
    `<mask>` follows the last piece, then `<ent>` and `<ent2>` unless the
    tokenizer files place them. The model's own normaliser applies (XLM-R's:
    NFKC, whitespace runs collapsed), as when mLUKE was pretrained.
    """

    SPECIAL = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}

    def __init__(self, model: bytes, added_tokens: dict[str, int] | None = None):
        import sentencepiece  # only mLUKE needs it

        version = tuple(int(part) for part in re.findall(r"\d+", sentencepiece.__version__)[:3])
        if version < (0, 2, 2):  # encode(return_type="offset_mapping") came with 0.2.2
            raise ImportError(f"mLUKE's tokenizer needs sentencepiece>=0.2.2, not {sentencepiece.__version__}")
        self.sp = sentencepiece.SentencePieceProcessor(model_proto=model)
        self.size = self.sp.get_piece_size()
        if [self.sp.id_to_piece(i) for i in range(min(3, self.size))] != ["<unk>", "<s>", "</s>"]:
            raise DataError("the SentencePiece model does not start with <unk>, <s>, </s> (XLM-R's layout)")
        self.added = {MASK_TOKEN: self.size + 1}
        for token, index in (added_tokens or {}).items():
            self.added.setdefault(token, index)
        for token in ("<ent>", "<ent2>"):
            self.added.setdefault(token, self.size + 1 + len(self.added))

    @cached_property
    def vocab(self) -> dict[str, int]:
        """Every word token's id (built on first use: XLM-R has 250,000 pieces)."""
        pieces = {self.sp.id_to_piece(i): i + 1 for i in range(3, self.size)}
        return {**pieces, **self.SPECIAL, **self.added}

    def token_id(self, token: str) -> int | None:
        if token in self.SPECIAL or token in self.added:
            return self.SPECIAL.get(token, self.added.get(token))
        piece = self.sp.piece_to_id(token)
        return piece + 1 if piece >= 3 and self.sp.id_to_piece(piece) == token else None

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and character offsets (into `text`) of one piece of text; the first piece covers leading spaces."""
        result = self.sp.encode(text, return_type="offset_mapping")
        unk = self.sp.unk_id()
        ids = [self.SPECIAL["<unk>"] if i == unk else i + 1 for i in result["ids"]]
        offsets = [tuple(span) for span in result["offsets"]]
        if offsets and text[:offsets[0][0]].isspace():  # SentencePiece drops them; the first ▁ stands for them
            offsets[0] = (0, offsets[0][1])
        return ids, offsets

    def ids_as_written(self, text: str) -> list[int]:
        return self.encode(text)[0]

    def decode(self, ids: list[int]) -> str:
        names = {index: token for token, index in {**self.SPECIAL, **self.added}.items()}
        pieces = [names.get(i) or self.sp.id_to_piece(i - 1) for i in ids]
        return "".join(pieces).replace("▁", " ").strip()


# -- entity inputs ------------------------------------------------------------------


class EntityTokenizer:
    """Entity inputs over any word pieces (`words`); see the module docstring for the rules."""

    def __init__(self, words, entity_vocab: dict[str, int], task: str | None = None, max_entity_length: int = 32,
                 max_mention_length: int = 30):
        if task not in TASKS:
            raise ValueError(f"task {task!r} is not supported (one of {', '.join(map(str, TASKS))})")
        self.words = words
        self.entity_vocab = entity_vocab
        self.task = task
        self.max_entity_length = {"entity_classification": 1, "entity_pair_classification": 2}.get(
            task, max_entity_length)
        self.max_mention_length = max_mention_length
        ids = {t: self._special(t) for t in ("<s>", "</s>", "<pad>", "<ent>", "<ent2>")}
        self.mask_id = words.token_id(MASK_TOKEN)
        self.cls_id, self.sep_id, self.pad_id = ids["<s>"], ids["</s>"], ids["<pad>"]
        self.ent_id, self.ent2_id = ids["<ent>"], ids["<ent2>"]
        self.entity_unk_id = self._entity_special("[UNK]")
        self.entity_pad_id = self._entity_special("[PAD]")
        self.entity_mask_id = self._entity_special("[MASK]")
        # Only the pair task needs it; older entity vocabularies lack it.
        self.entity_mask2_id = self._entity_special("[MASK2]") if task == "entity_pair_classification" else None

    @property
    def vocab(self) -> dict[str, int]:
        """Word token → id, special and added tokens included."""
        return self.words.vocab

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
                self._encode_piece(text[cur:cut], cur, ids, offsets)
                cur = cut
            token_at[position] = len(ids)
        self._encode_piece(text[cur:], cur, ids, offsets)
        token_spans = [(token_at[s], token_at[e]) for s, e in spans] if spans else None
        return Tokens(ids, offsets, token_spans)

    def word_piece_ids(self, text: str) -> list[int]:
        """Token ids of `text` as written: BPE adds no space in front, whatever `add_prefix_space` says;
        SentencePiece marks the start of any text with `▁`, as it always does."""
        return self.words.ids_as_written(text)

    bpe_ids = word_piece_ids  # the name callers used before mLUKE

    def decode(self, ids: list[int]) -> str:
        """The text of word token ids."""
        return self.words.decode(list(ids))

    def _pieces(self, text: str, spans) -> tuple[list[int], list[tuple[int, int]] | None]:
        tokens = self.tokenize(text, spans)
        return tokens.ids, tokens.spans

    def _encode_piece(self, text: str, start: int, ids: list, offsets: list) -> None:
        # `<mask>` is one token that takes the space before it (the `lstrip` of
        # the tokenizer files); the text on either side is encoded as a piece of
        # its own, as transformers does.
        at = 0
        for match in _MASK_RE.finditer(text):
            if self.mask_id is None:
                raise DataError(f"the text has {MASK_TOKEN} but the word vocabulary does not")
            self._encode_words(text[at:match.start()], start + at, ids, offsets)
            ids.append(self.mask_id)
            offsets.append((start + match.end() - len(MASK_TOKEN), start + match.end()))
            at = match.end()
        self._encode_words(text[at:], start + at, ids, offsets)

    def _encode_words(self, text: str, start: int, ids: list, offsets: list) -> None:
        if text:
            piece_ids, piece_offsets = self.words.encode(text)
            ids += piece_ids
            offsets += [(start + a, start + b) for a, b in piece_offsets]

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
        index = self.words.token_id(token)
        if index is None:
            raise DataError(f"the word vocabulary has no {token}")
        return index

    def _entity_special(self, token: str) -> int:
        if token not in self.entity_vocab:
            raise DataError(f"the entity vocabulary has no {token}")
        return self.entity_vocab[token]


class LukeTokenizer(EntityTokenizer):
    """LUKE's tokenizer: words by byte-level BPE (`vocab.json`, `merges.txt`), entities by title."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], entity_vocab: dict[str, int],
                 add_prefix_space: bool = False, task: str | None = None, max_entity_length: int = 32,
                 max_mention_length: int = 30, added_tokens: dict[str, int] | None = None):
        super().__init__(ByteLevelBPE(vocab, merges, add_prefix_space, added_tokens), entity_vocab, task,
                         max_entity_length, max_mention_length)
        self.bpe = self.words.model

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
        settings = _settings(directory, ("add_prefix_space", *_SETTINGS))
        return cls(vocab, merges, read_entity_vocab(directory), added_tokens=_added_tokens(directory),
                   **{**settings, **overrides})


class MLukeTokenizer(EntityTokenizer):
    """mLUKE's tokenizer: XLM-R's SentencePiece words (`sentencepiece.bpe.model`), entities by
    "{language}:{title}" (`entity_vocab.json` as transformers' conversion names them; the special
    entities `[PAD]`, `[UNK]`, `[MASK]`, `[MASK2]` bare)."""

    def __init__(self, model: bytes | str | Path, entity_vocab: dict[str, int], task: str | None = None,
                 max_entity_length: int = 32, max_mention_length: int = 30,
                 added_tokens: dict[str, int] | None = None, add_prefix_space: bool = True):
        if not add_prefix_space:
            raise ValueError("mLUKE's SentencePiece words always mark the start of a text (add_prefix_space=True)")
        model = model if isinstance(model, bytes) else Path(model).read_bytes()
        super().__init__(SentencePieceWords(model, added_tokens), entity_vocab, task, max_entity_length,
                         max_mention_length)

    @classmethod
    def from_dir(cls, directory: str | Path, **overrides) -> "MLukeTokenizer":
        """Reads sentencepiece.bpe.model, an entity vocabulary and tokenizer_config.json if present."""
        directory = Path(directory)
        path = directory / SENTENCEPIECE_MODEL
        if not path.is_file():
            raise DataError(f"{directory}: no {SENTENCEPIECE_MODEL} (an mLUKE/XLM-R tokenizer needs it)")
        settings = _settings(directory, _SETTINGS)
        return cls(path.read_bytes(), read_entity_vocab(directory, multilingual=True),
                   added_tokens=_added_tokens(directory), **{**settings, **overrides})


def load_tokenizer(directory: str | Path, **overrides) -> EntityTokenizer:
    """The tokenizer a directory's files make: `sentencepiece.bpe.model` → mLUKE; `vocab.json` + `merges.txt` → LUKE.

    `overrides` go to `from_dir` (`task=…`, `add_prefix_space=True`, …).
    """
    directory = Path(directory)
    sentencepiece = (directory / SENTENCEPIECE_MODEL).is_file()
    bpe = all((directory / name).is_file() for name in BPE_FILES)
    if sentencepiece and bpe:
        raise DataError(f"{directory}: both {SENTENCEPIECE_MODEL} (mLUKE) and {' + '.join(BPE_FILES)} (LUKE); "
                        "keep the files of one tokenizer")
    if sentencepiece:
        return MLukeTokenizer.from_dir(directory, **overrides)
    if bpe:
        return LukeTokenizer.from_dir(directory, **overrides)
    raise DataError(f"{directory}: no tokenizer files (expected {SENTENCEPIECE_MODEL} for mLUKE, or "
                    f"{' + '.join(BPE_FILES)} for LUKE)")


def _settings(directory: Path, names: tuple[str, ...]) -> dict:
    path = directory / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {name: config[name] for name in names if name in config}


def _added_tokens(directory: Path) -> dict[str, int]:
    """`added_tokens.json` ({token: id}), else the `<ent>`/`<ent2>` of tokenizer_config's `added_tokens_decoder`
    (transformers 5 spells mLUKE's `▁<ent>`)."""
    path = directory / "added_tokens.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    path = directory / "tokenizer_config.json"
    decoder = json.loads(path.read_text(encoding="utf-8")).get("added_tokens_decoder", {}) if path.is_file() else {}
    added = {}
    for index, token in decoder.items():
        content = token.get("content", "") if isinstance(token, dict) else str(token)
        if content.lstrip("▁") in ("<ent>", "<ent2>"):
            added[content.lstrip("▁")] = int(index)
    return added


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


def read_entity_vocab(directory: str | Path, multilingual: bool = False) -> dict[str, int]:
    """`entity_vocab.json` ({name: id}), `.tsv` (title<TAB>count, id = line) or `.jsonl` (LUKE's own).

    In a `.jsonl` each id lists [title, language] pairs: LUKE names an entity by its title,
    mLUKE (`multilingual`) by "{language}:{title}", special entities ([PAD], [UNK], [MASK]) bare,
    as transformers' mLUKE conversion does.
    """
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
                for title, language in record["entities"]:
                    if multilingual and title in ENTITY_SPECIALS:
                        vocab[title] = record["id"]
                        break
                    vocab[f"{language}:{title}" if multilingual else title] = record["id"]
        return vocab
    raise DataError(f"{directory}: no entity vocabulary ({', '.join(ENTITY_VOCAB_FILES)})")
