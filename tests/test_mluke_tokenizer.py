"""Our mLUKE tokenizer against transformers' MLukeTokenizer, on a SentencePiece model trained in the test.

Two references:
- "stock": transformers 5's `MLukeTokenizer` as it is (built from `vocab=`, XLM-R's layout). Its word
  pipeline lacks the SentencePiece model's normaliser, so it only agrees with SentencePiece on text that
  normalisation leaves alone: no full-width forms ("，" → ","), no runs of spaces, tabs or newlines; and
  a text without entity spans must not hold characters outside the vocabulary (those come out as `<s>`,
  id 0, there; as `<unk>`, 3, with spans, and in SentencePiece). PLAIN cases are compared with it.
- "normalized": the same `MLukeTokenizer` whose word backend has the model's normaliser and `<unk>`, as
  transformers' own XLM-R conversion sets them up (words as mLUKE saw them in pretraining). Every case
  (PLAIN and NORMALIZING) is compared with it; its entity logic is `MLukeTokenizer`'s own.
Both get two repairs of transformers 5 defects that are not about words: `truncate_sequences` (its
slow-tokenizer truncation; 5.x's MLukeTokenizer lacks it and raises AttributeError when truncating with
entities), and a `<mask>` after a space read back as `<mask>`, not `<unk>`, in texts with entity spans.
Its entity-less pairs give the second text token type 1 (see `assert_matches`); ours stay 0.
"""

from __future__ import annotations

import json
import types
import unicodedata

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
sentencepiece = pytest.importorskip("sentencepiece")
if int(transformers.__version__.split(".")[0]) < 5:
    pytest.skip("the references are built with transformers 5's MLukeTokenizer(vocab=...)", allow_module_level=True)

from tokenizers import models, normalizers, pre_tokenizers  # noqa: E402
from transformers.tokenization_python import PythonBackend  # noqa: E402

from engine.errors import DataError  # noqa: E402
from luke_static.tokenizer import (  # noqa: E402
    MLUKE_TOKENIZER_FILES,
    LukeTokenizer,
    MLukeTokenizer,
    load_tokenizer,
    read_entity_vocab,
)

from helpers.luke import MLUKE_ENTITIES, mluke_vocab, write_mluke_tokenizer, write_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_mluke_tokenizer(tmp_path_factory.mktemp("mluke"))


@pytest.fixture(scope="module")
def sp(files):
    return sentencepiece.SentencePieceProcessor(model_file=str(files / "sentencepiece.bpe.model"))


def hf_tokenizer(files, reference: str, **kwargs):
    tokenizer = transformers.MLukeTokenizer(vocab=mluke_vocab(files), entity_vocab=dict(MLUKE_ENTITIES), **kwargs)
    tokenizer.truncate_sequences = types.MethodType(PythonBackend.truncate_sequences, tokenizer)
    # With entity spans, transformers 5 turns a text's pieces back into ids by their strings, and a `<mask>` that
    # took the space before it is the string " <mask>" there, which it reads as `<unk>` (without spans: right).
    to_ids = tokenizer.convert_tokens_to_ids
    tokenizer.convert_tokens_to_ids = lambda tokens: to_ids(
        [t.lstrip() if t.strip() == "<mask>" else t for t in tokens] if isinstance(tokens, list) else tokens)
    if reference == "normalized":
        backend = tokenizer._tokenizer
        backend.normalizer = normalizers.Precompiled(precompiled_charsmap((files / "sentencepiece.bpe.model")
                                                                          .read_bytes()))
        backend.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")])
        backend.model = models.Unigram(mluke_vocab(files), unk_id=3, byte_fallback=False)
    return tokenizer


def precompiled_charsmap(model: bytes) -> bytes:
    """ModelProto.normalizer_spec (field 3) .precompiled_charsmap (field 2), read without protobuf."""
    def varint(buf, i):
        value = shift = 0
        while True:
            byte = buf[i]
            value, shift, i = value | (byte & 0x7F) << shift, shift + 7, i + 1
            if byte < 0x80:
                return value, i

    def fields(buf):
        i = 0
        while i < len(buf):
            key, i = varint(buf, i)
            kind = key & 7
            if kind == 0:
                value, i = varint(buf, i)
            elif kind == 2:
                size, i = varint(buf, i)
                value, i = buf[i:i + size], i + size
            else:
                size = 8 if kind == 1 else 4
                value, i = buf[i:i + size], i + size
            yield key >> 3, value

    spec = next(value for number, value in fields(model) if number == 3)
    return next(value for number, value in fields(spec) if number == 2)


def at(text: str, mention: str) -> tuple[int, int]:
    start = text.index(mention)
    return start, start + len(mention)


def spans(text: str, *mentions: str) -> list[tuple[int, int]]:
    return [at(text, m) for m in mentions]


ZH, JA = "东京是日本的首都", "東京は日本の首都です"
EN, DE = "Angela Merkel lives in Berlin", "Die Straße in München ist schön"
MIXED = "Angela Merkel besuchte 東京 und 北京大学"
ZH_FULL, JA_FULL = "东京，是日本的首都！", "「東京」は（日本の）首都です。"

# (id, call kwargs): texts whose words stock transformers 5 gets right.
PLAIN = [
    ("zh-spans-at-start-and-end", dict(text=ZH, entity_spans=spans(ZH, "东京", "首都"))),
    ("ja-spans-at-start-and-end", dict(text=JA, entity_spans=spans(JA, "東京", "です"))),
    ("en-spans-at-start-and-end", dict(text=EN, entity_spans=spans(EN, "Angela Merkel", "Berlin"))),
    ("de-umlauts", dict(text=DE, entity_spans=spans(DE, "Straße", "München", "schön"))),
    ("mixed-scripts", dict(text=MIXED, entity_spans=spans(MIXED, "Merkel", "東京", "北京大学"))),
    ("known-titles", dict(text=EN, entity_spans=spans(EN, "Angela Merkel", "Berlin"),
                          entities=["en:Angela Merkel", "en:Berlin"])),
    ("known-and-unknown-titles", dict(text=MIXED, entity_spans=spans(MIXED, "Angela Merkel", "東京", "北京大学"),
                                      entities=["de:Angela Merkel", "東京", "zh:北京大学"])),
    ("unknown-language-prefix", dict(text=JA, entity_spans=spans(JA, "東京", "日本"), entities=["zh:東京", "ja:日本"])),
    ("mask-entity-by-title", dict(text=MIXED, entity_spans=spans(MIXED, "Merkel", "東京"),
                                  entities=["[MASK]", "ja:東京"])),
    ("pair-with-entities", dict(text=ZH, entity_spans=spans(ZH, "东京"), entities=["zh:东京"], text_pair=EN,
                                entity_spans_pair=spans(EN, "Angela Merkel", "Berlin"),
                                entities_pair=["en:Angela Merkel", "en:Tokyo"])),
    ("pair-without-entities", dict(text=JA, text_pair=DE)),
    ("single-without-entities", dict(text=MIXED)),
    ("mask-token-in-text", dict(text="東京は<mask>の首都です", entity_spans=[(0, 2)])),
    ("mask-tokens-after-spaces", dict(text="Angela <mask> lives in <mask> Berlin",
                                      entity_spans=[(0, 6), (30, 36)])),
    ("characters-outside-the-vocabulary", dict(text="Zürich 🙂 ẞ and 東京", entity_spans=[(0, 6), (15, 17)],
                                               entities=["de:Zürich", "ja:東京"])),
    ("mask-tokens-after-spaces-without-entities", dict(text="Angela <mask> lives in <mask> Berlin")),
    ("mask-token-inside-a-word", dict(text="Ber<mask>lin")),
]
# Texts SentencePiece normalises: compared with the normalized reference only.
NORMALIZING = [
    ("zh-full-width-punctuation", dict(text=ZH_FULL, entity_spans=spans(ZH_FULL, "东京", "首都"))),
    ("ja-full-width-brackets", dict(text=JA_FULL, entity_spans=spans(JA_FULL, "東京", "日本", "首都です。"))),
    ("full-width-latin-and-digits", dict(text="ＡＢＣ１２３と東京", entity_spans=[(0, 3), (7, 9)])),
    ("runs-of-spaces-tab-newline", dict(text="Angela  Merkel   lives in\tBerlin\nund München",
                                        entity_spans=[(0, 6), (8, 14), (26, 32), (37, 44)])),
    ("characters-outside-the-vocabulary-without-entities", dict(text="Zürich 🙂 ẞ and 東京")),
    ("pair-full-width", dict(text="北京大学位于北京市海淀区，历史很长！", entity_spans=[(0, 4)], text_pair=JA_FULL,
                             entity_spans_pair=spans(JA_FULL, "東京"))),
]
ALL = PLAIN + NORMALIZING
TASK_CASES = [  # (id, task, call kwargs, reference)
    ("classification-span-at-start", "entity_classification", dict(text=ZH, entity_spans=[(0, 2)]), "stock"),
    ("classification-span-at-end", "entity_classification", dict(text=EN, entity_spans=spans(EN, "Berlin")),
     "stock"),
    ("classification-full-width", "entity_classification", dict(text=ZH_FULL, entity_spans=spans(ZH_FULL, "首都")),
     "normalized"),
    ("pair-head-first", "entity_pair_classification",
     dict(text=MIXED, entity_spans=spans(MIXED, "Angela Merkel", "東京")), "stock"),
    ("pair-tail-first", "entity_pair_classification",
     dict(text=MIXED, entity_spans=spans(MIXED, "北京大学", "Angela Merkel")), "stock"),
    ("pair-ja-start-and-end", "entity_pair_classification", dict(text=JA, entity_spans=spans(JA, "東京", "です")),
     "stock"),
    ("pair-full-width", "entity_pair_classification", dict(text=JA_FULL, entity_spans=spans(JA_FULL, "日本", "東京")),
     "normalized"),
    ("span-overlapping", "entity_span_classification",
     dict(text=MIXED, entity_spans=[(0, 6), (0, 13), (7, 22), (23, 25), (30, 34), (23, 34)]), "stock"),
    ("span-full-width", "entity_span_classification",
     dict(text=ZH_FULL, entity_spans=[(0, 2), (0, 3), (3, 9), (8, 10)]), "normalized"),
]
TRUNCATION_CASES = [  # (id, call kwargs, tokens to cut, reference): every text with spans ends with one
    ("single-drops-the-last-entity", dict(text=EN + " and visited Tokyo", entity_spans=spans(
        EN + " and visited Tokyo", "Angela Merkel", "Berlin", "Tokyo")), 2, "stock"),
    ("pair-longest-first", dict(text=MIXED, entity_spans=spans(MIXED, "Merkel", "北京大学"), text_pair=ZH,
                                entity_spans_pair=spans(ZH, "东京", "首都")), 3, "stock"),
    ("pair-full-width", dict(text=ZH_FULL, entity_spans=spans(ZH_FULL, "东京", "首都！"), text_pair=JA_FULL,
                             entity_spans_pair=spans(JA_FULL, "東京", "首都です。")), 3, "normalized"),
    ("pair-without-entities", dict(text=DE, text_pair=JA), 5, "stock"),
]


def as_hf_fields(ours, theirs) -> dict:
    """Our unpadded encoding under HF's names, for the keys HF returned (an unknown key fails)."""
    fields = {"input_ids": ours.input_ids, "token_type_ids": ours.token_type_ids,
              "attention_mask": [1] * len(ours.input_ids), "entity_ids": ours.entity_ids,
              "entity_position_ids": ours.entity_position_ids, "entity_token_type_ids": ours.entity_token_type_ids,
              "entity_attention_mask": [1] * len(ours.entity_ids),
              "entity_start_positions": ours.entity_start_positions, "entity_end_positions": ours.entity_end_positions}
    return {key: fields[key] for key in theirs}


def assert_matches(files, reference, kwargs, tokenizer_settings=None, max_length=None):
    settings = tokenizer_settings or {}
    ours = MLukeTokenizer.from_dir(files, **settings).encode(**kwargs, max_length=max_length)
    truncation = dict(max_length=max_length, truncation=True) if max_length else {}
    theirs = hf_tokenizer(files, reference, **settings)(**kwargs, **truncation, return_token_type_ids=True)
    assert "token_type_ids" in theirs and ("entity_spans" not in kwargs or "entity_ids" in theirs)
    theirs = dict(theirs)
    if "text_pair" in kwargs and not {"entity_spans", "entity_spans_pair"} & set(kwargs):
        # transformers 5 encodes a pair without entities with its fast backend, whose template gives the second
        # text token type 1; with entities the same tokenizer gives 0s, and mLUKE (as XLM-R) has one token type.
        second = theirs["input_ids"].index(2) + 2  # <s> A </s></s>
        assert theirs["token_type_ids"] == [0] * second + [1] * (len(theirs["input_ids"]) - second)
        theirs["token_type_ids"] = [0] * len(theirs["input_ids"])
    assert as_hf_fields(ours, theirs) == theirs  # every field HF returns, masks included
    return ours


@pytest.mark.parametrize("kwargs", [c for _, c in PLAIN], ids=[i for i, _ in PLAIN])
def test_matches_stock_mluke_tokenizer(files, kwargs):
    assert_matches(files, "stock", kwargs)


@pytest.mark.parametrize("kwargs", [c for _, c in ALL], ids=[i for i, _ in ALL])
def test_matches_mluke_tokenizer_with_sentencepiece_normalizer(files, kwargs):
    assert_matches(files, "normalized", kwargs)


@pytest.mark.parametrize("task, kwargs, reference", [c[1:] for c in TASK_CASES], ids=[c[0] for c in TASK_CASES])
def test_tasks_match_mluke_tokenizer(files, task, kwargs, reference):
    ours = assert_matches(files, reference, kwargs, dict(task=task))
    tokenizer = MLukeTokenizer.from_dir(files)
    markers = (ours.input_ids.count(tokenizer.ent_id), ours.input_ids.count(tokenizer.ent2_id))
    assert markers == {"entity_classification": (2, 0), "entity_pair_classification": (2, 2)}.get(task, (0, 0))
    if task == "entity_span_classification":
        assert len(ours.entity_start_positions) == len(ours.entity_end_positions) == len(kwargs["entity_spans"])


@pytest.mark.parametrize("kwargs, cut, reference", [c[1:] for c in TRUNCATION_CASES],
                         ids=[c[0] for c in TRUNCATION_CASES])
def test_truncation_matches_mluke_tokenizer(files, kwargs, cut, reference):
    full = MLukeTokenizer.from_dir(files).encode(**kwargs)
    ours = assert_matches(files, reference, kwargs, max_length=len(full.input_ids) - cut)
    assert len(ours.input_ids) == len(full.input_ids) - cut
    if "entity_spans" in kwargs:
        assert len(ours.entity_ids) < len(full.entity_ids)  # each case cuts off an entity


@pytest.mark.parametrize("kwargs", [c for _, c in ALL], ids=[i for i, _ in ALL])
def test_word_ids_are_sentencepiece_ids(files, sp, kwargs):
    """Without entities or `<mask>`, the words are SentencePiece's own pieces in fairseq's ids."""
    texts = [kwargs["text"]] + ([kwargs["text_pair"]] if "text_pair" in kwargs else [])
    tokenizer = MLukeTokenizer.from_dir(files)
    for text in texts:
        if "<mask>" not in text:
            expected = [3 if i == sp.unk_id() else i + 1 for i in sp.encode(text)]
            assert tokenizer.encode(text).input_ids == [0, *expected, 2]
            assert tokenizer.word_piece_ids(text) == tokenizer.bpe_ids(text) == expected


@pytest.mark.parametrize("kwargs", [c for _, c in ALL], ids=[i for i, _ in ALL])
def test_offsets_cover_the_characters_of_each_piece(files, sp, kwargs):
    text = kwargs["text"]
    tokens = MLukeTokenizer.from_dir(files).tokenize(text, kwargs.get("entity_spans"))
    assert len(tokens.offsets) == len(tokens.ids)
    assert [a for a, _ in tokens.offsets] == sorted(a for a, _ in tokens.offsets)
    for index, (start, end) in zip(tokens.ids, tokens.offsets):
        assert 0 <= start <= end <= len(text)
        chars = unicodedata.normalize("NFKC", text[start:end]).strip()
        if index == MLukeTokenizer.from_dir(files).mask_id:
            assert text[start:end] == "<mask>"
        elif index == 3:  # <unk>: some characters
            assert chars
        else:
            assert chars == sp.id_to_piece(index - 1).lstrip("▁")


def test_offsets_of_spaces_and_of_the_added_word_start(files):
    """`▁` for spaces covers them (a run too); the `▁` SentencePiece adds where no space was covers nothing."""
    tokenizer = MLukeTokenizer.from_dir(files)
    text = "东京，是 Angela  Merkel"
    tokens = tokenizer.tokenize(text, [(0, 2), (5, 11)])
    first_of_piece = {0: 0, 2: tokens.spans[0][1], 4: tokens.spans[1][0], 11: tokens.spans[1][1]}
    for start, k in first_of_piece.items():  # each piece of text cut at the spans starts a run of tokens
        assert tokens.offsets[k][0] == start
        if start in (0, 2) and tokens.ids[k] == tokenizer.vocab["▁"]:
            assert tokens.offsets[k] == (start, start)
    assert text[slice(*tokens.offsets[first_of_piece[4]])].startswith(" A")  # the space before "Angela"
    assert text[slice(*tokens.offsets[first_of_piece[11]])].startswith("  ")  # the two before "Merkel"
    comma = next(k for k, (a, b) in enumerate(tokens.offsets) if (a, b) == (2, 3))
    assert tokenizer.decode([tokens.ids[comma]]) == ","  # "，" normalised
    # "ẞ" is outside the vocabulary, so the added `▁` stands alone: empty, before the `<unk>` covering "ẞ".
    tokens = tokenizer.tokenize("ẞ東京")
    assert tokens.ids[:2] == [tokenizer.vocab["▁"], 3] and tokens.offsets[:2] == [(0, 0), (0, 1)]


def test_padding_to_a_batch_matches(files):
    cases = [PLAIN[0][1], PLAIN[4][1]]
    tokenizer = MLukeTokenizer.from_dir(files)
    encodings = [tokenizer.encode(**c) for c in cases]
    length = max(len(e.input_ids) for e in encodings) + 3
    batch = tokenizer.pad(encodings, max_length=length, max_entity_length=32)
    theirs = hf_tokenizer(files, "stock")([c["text"] for c in cases], entity_spans=[c["entity_spans"] for c in cases],
                                          padding="max_length", max_length=length)  # entities to its 32
    for name in ("input_ids", "attention_mask", "entity_ids", "entity_attention_mask", "entity_position_ids"):
        np.testing.assert_array_equal(batch[name], np.array(theirs[name]), err_msg=name)


def test_span_classification_padding_matches(files):
    task = dict(task="entity_span_classification")
    cases = [TASK_CASES[7][2], TASK_CASES[8][2]]
    tokenizer = MLukeTokenizer.from_dir(files, **task)
    batch = tokenizer.pad([tokenizer.encode(**c) for c in cases])
    theirs = hf_tokenizer(files, "normalized", **task)([c["text"] for c in cases],
                                                       entity_spans=[c["entity_spans"] for c in cases], padding=True)
    for name in ("input_ids", "entity_ids", "entity_start_positions", "entity_end_positions", "entity_attention_mask",
                 "entity_position_ids"):
        np.testing.assert_array_equal(batch[name], np.array(theirs[name]), err_msg=name)


def test_special_ids_follow_xlm_roberta(files, sp):
    tokenizer = MLukeTokenizer.from_dir(files)
    n = sp.get_piece_size()
    assert (tokenizer.cls_id, tokenizer.pad_id, tokenizer.sep_id, tokenizer.vocab["<unk>"]) == (0, 1, 2, 3)
    assert (tokenizer.mask_id, tokenizer.ent_id, tokenizer.ent2_id) == (n + 1, n + 2, n + 3)
    assert tokenizer.vocab[sp.id_to_piece(3)] == 4 and len(tokenizer.vocab) == n + 4
    hf = hf_tokenizer(files, "stock")
    assert (hf.mask_token_id, hf.entity_1_token_id, hf.entity_2_token_id) == (n + 1, n + 2, n + 3)
    assert (tokenizer.entity_pad_id, tokenizer.entity_unk_id, tokenizer.entity_mask_id) == (0, 1, 2)
    assert tokenizer.decode(tokenizer.encode("Angela Merkel lives in Berlin").input_ids[1:-1]) == EN


def test_added_tokens_placed_by_the_files(files, tmp_path):
    for name in MLUKE_TOKENIZER_FILES:
        if (files / name).is_file():
            (tmp_path / name).write_bytes((files / name).read_bytes())
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config["added_tokens_decoder"] = {"500": {"content": "▁<ent>"}, "501": {"content": "▁<ent2>"}}  # transformers 5
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    assert (MLukeTokenizer.from_dir(tmp_path).ent_id, MLukeTokenizer.from_dir(tmp_path).ent2_id) == (500, 501)
    (tmp_path / "added_tokens.json").write_text(json.dumps({"<ent>": 600, "<ent2>": 601}))  # transformers 4
    assert MLukeTokenizer.from_dir(tmp_path, task="entity_classification").encode(ZH, [(0, 2)]).input_ids[1] == 600


def test_load_tokenizer_picks_the_kind_from_the_files(files, tmp_path):
    mluke = load_tokenizer(files, task="entity_pair_classification", add_prefix_space=True)
    assert type(mluke) is MLukeTokenizer and mluke.task == "entity_pair_classification"
    luke = load_tokenizer(write_tokenizer(tmp_path / "luke"), add_prefix_space=True)
    assert type(luke) is LukeTokenizer
    assert luke.encode("Beyoncé lives").input_ids == LukeTokenizer.from_dir(
        tmp_path / "luke", add_prefix_space=True).encode("Beyoncé lives").input_ids
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"empty: no tokenizer files \(expected sentencepiece\.bpe\.model for mLUKE, "
                                        r"or vocab\.json \+ merges\.txt for LUKE\)"):
        load_tokenizer(empty)
    (tmp_path / "luke" / "sentencepiece.bpe.model").write_bytes((files / "sentencepiece.bpe.model").read_bytes())
    with pytest.raises(DataError, match="both sentencepiece.bpe.model"):
        load_tokenizer(tmp_path / "luke")


def test_mluke_errors(files, tmp_path):
    with pytest.raises(ValueError, match="add_prefix_space"):
        MLukeTokenizer.from_dir(files, add_prefix_space=False)
    with pytest.raises(DataError, match="no sentencepiece.bpe.model"):
        MLukeTokenizer.from_dir(tmp_path)
    (tmp_path / "sentencepiece.bpe.model").write_bytes((files / "sentencepiece.bpe.model").read_bytes())
    with pytest.raises(DataError, match="no entity vocabulary"):
        MLukeTokenizer.from_dir(tmp_path)


def test_multilingual_entity_vocabulary_from_jsonl(tmp_path):
    """mLUKE's own `entity_vocab.jsonl`: names "{language}:{title}", the special entities bare."""
    (tmp_path / "entity_vocab.jsonl").write_text(
        '{"id": 0, "entities": [["[PAD]", null]], "count": 0}\n'
        '{"id": 2, "entities": [["[MASK]", null]], "count": 0}\n'
        '{"id": 5, "entities": [["Tokyo", "en"], ["東京", "ja"]], "count": 3}\n', encoding="utf-8")
    assert read_entity_vocab(tmp_path, multilingual=True) == {"[PAD]": 0, "[MASK]": 2, "en:Tokyo": 5, "ja:東京": 5}
    assert read_entity_vocab(tmp_path) == {"[PAD]": 0, "[MASK]": 2, "Tokyo": 5, "東京": 5}  # LUKE's names
