"""Our LUKE tokenizer against transformers' LukeTokenizer on a tiny BPE vocabulary."""

from __future__ import annotations

import json

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from luke_static.tokenizer import LukeTokenizer, read_entity_vocab  # noqa: E402

from helpers.luke import ENTITIES, write_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_tokenizer(tmp_path_factory.mktemp("tok"))


def hf_tokenizer(files, **kwargs):
    vocab = json.loads((files / "vocab.json").read_text())
    merges = [tuple(line.split()) for line in (files / "merges.txt").read_text().splitlines()[1:] if line]
    return transformers.LukeTokenizer(vocab=vocab, merges=merges, entity_vocab=dict(ENTITIES), **kwargs)


CASES = [
    dict(text="Beyoncé lives in Los Angeles.", entity_spans=[(0, 7), (17, 28)]),
    dict(text="Beyoncé lives in Los Angeles.", entity_spans=[(0, 7), (17, 28)], entities=["Beyoncé", "Nobody"]),
    dict(text="  Top seed Ana Ivanovic said on Thursday she could hardly believe her luck.",
         entity_spans=[(11, 23), (42, 45)]),
    dict(text="The netcord helped the new world number one at Wimbledon", entity_spans=[(47, 56)]),
    dict(text="Ünïcödé wörds 🙂 naïve(café) résumé", entity_spans=[(0, 7), (23, 27)]),
    dict(text="Ana Ivanovic said", entity_spans=[(0, 12)], text_pair="Beyoncé lives in Los Angeles.",
         entity_spans_pair=[(17, 28)]),
    dict(text="no entities at all, just words"),
]


@pytest.mark.parametrize("prefix_space", [True, False])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_encoding_matches_luke_tokenizer(files, case, prefix_space):
    kwargs = dict(CASES[case])
    ours = LukeTokenizer.from_dir(files, add_prefix_space=prefix_space).encode(**kwargs)
    theirs = hf_tokenizer(files, add_prefix_space=prefix_space)(**kwargs, return_token_type_ids=True)
    assert "token_type_ids" in theirs and ("entity_spans" not in kwargs or "entity_ids" in theirs)
    assert as_hf_fields(ours, theirs) == dict(theirs)  # every field HF returns, masks included


def as_hf_fields(ours, theirs) -> dict:
    """Our unpadded encoding under HF's names, for the keys HF returned (an unknown key fails)."""
    fields = {"input_ids": ours.input_ids, "token_type_ids": ours.token_type_ids,
              "attention_mask": [1] * len(ours.input_ids), "entity_ids": ours.entity_ids,
              "entity_position_ids": ours.entity_position_ids, "entity_token_type_ids": ours.entity_token_type_ids,
              "entity_attention_mask": [1] * len(ours.entity_ids),
              "entity_start_positions": ours.entity_start_positions, "entity_end_positions": ours.entity_end_positions}
    return {key: fields[key] for key in theirs}


@pytest.mark.parametrize("prefix_space", [True, False])
@pytest.mark.parametrize("text, spans", [
    ("Beyoncé lives in <mask>.", None), ("<mask> lives in Los Angeles.", [(17, 28)]),
    ("Beyoncé lives in <mask> <mask>, a city.", [(0, 7)]), ("a<mask>b", None),
])
def test_mask_tokens_match_luke_tokenizer(files, text, spans, prefix_space):
    """`<mask>` as the tokenizer files declare it: one token that takes the space before it."""
    mask = transformers.AddedToken("<mask>", lstrip=True, rstrip=False)
    theirs = hf_tokenizer(files, add_prefix_space=prefix_space, mask_token=mask)(
        text, **({"entity_spans": spans} if spans else {}))
    tokenizer = LukeTokenizer.from_dir(files, add_prefix_space=prefix_space)
    ours = tokenizer.encode(text, entity_spans=spans)
    assert ours.input_ids == theirs["input_ids"] and tokenizer.mask_id in ours.input_ids
    if spans:
        assert ours.entity_position_ids == theirs["entity_position_ids"]


def test_entity_classification_markers(files):
    text, span = "Top seed Ana Ivanovic said on Thursday she could hardly believe her luck.", [(39, 42)]
    ours = LukeTokenizer.from_dir(files, add_prefix_space=True, task="entity_classification").encode(
        text, entity_spans=span)
    theirs = hf_tokenizer(files, add_prefix_space=True, task="entity_classification")(text, entity_spans=span)
    assert ours.input_ids == theirs["input_ids"]
    assert ours.entity_ids == theirs["entity_ids"] and ours.entity_position_ids == theirs["entity_position_ids"]


def test_truncation_drops_entities_that_no_longer_fit(files):
    # transformers 5.23's LukeTokenizer raises AttributeError (no truncate_sequences) when
    # truncating, so the rule is checked against the untruncated encoding, which matches it.
    kwargs = dict(text="Top seed Ana Ivanovic said on Thursday she could hardly believe her luck at Wimbledon",
                  entity_spans=[(9, 21), (76, 85)], text_pair="Beyoncé lives in Los Angeles.",
                  entity_spans_pair=[(0, 7)])
    tokenizer = LukeTokenizer.from_dir(files, add_prefix_space=True)
    full = tokenizer.encode(**kwargs)
    assert full.input_ids == hf_tokenizer(files, add_prefix_space=True)(**kwargs)["input_ids"]
    cut = tokenizer.encode(**kwargs, max_length=24)
    sep = tokenizer.sep_id
    first_end = full.input_ids.index(sep)
    first, pair = full.input_ids[1:first_end], full.input_ids[first_end + 2:-1]
    while len(first) + len(pair) > 20:  # longest_first
        (pair if len(pair) > len(first) else first).pop()
    assert cut.input_ids == [tokenizer.cls_id, *first, sep, sep, *pair, sep]
    # "Wimbledon" was cut off with the end of the first text; the other two entities remain,
    # the pair entity shifted by the shorter first text.
    assert len(cut.entity_ids) == 2
    assert cut.entity_position_ids[0] == full.entity_position_ids[0]
    shift = (first_end - 1) - len(first)
    assert cut.entity_position_ids[1] == [p - shift if p >= 0 else p for p in full.entity_position_ids[2]]


def test_padding_to_a_batch_matches(files):
    texts = [CASES[0], CASES[3]]
    tokenizer = LukeTokenizer.from_dir(files, add_prefix_space=True)
    batch = tokenizer.pad([tokenizer.encode(**c) for c in texts], max_length=20, max_entity_length=32)
    hf = hf_tokenizer(files, add_prefix_space=True)
    theirs = hf([c["text"] for c in texts], entity_spans=[c["entity_spans"] for c in texts], padding="max_length",
                max_length=20)  # HF pads entities to its max_entity_length (32)
    for name in ("input_ids", "attention_mask", "entity_ids", "entity_attention_mask", "entity_position_ids"):
        np.testing.assert_array_equal(batch[name], np.array(theirs[name]), err_msg=name)


def test_entity_vocabulary_formats(tmp_path):
    (tmp_path / "entity_vocab.tsv").write_text("[PAD]\t0\n[UNK]\t0\n[MASK]\t0\nTokyo\t12\n")
    assert read_entity_vocab(tmp_path) == {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "Tokyo": 3}
    (tmp_path / "entity_vocab.tsv").unlink()
    (tmp_path / "entity_vocab.jsonl").write_text(
        '{"id": 0, "entities": [["[PAD]", null]], "count": 0}\n'
        '{"id": 5, "entities": [["Tokyo", "en"], ["東京", "ja"]], "count": 3}\n')
    assert read_entity_vocab(tmp_path) == {"[PAD]": 0, "Tokyo": 5, "東京": 5}


PAIR_CASES = [
    dict(text="Beyoncé lives in Los Angeles.", entity_spans=[(0, 7), (17, 28)]),  # head first, span at the start
    dict(text="Beyoncé lives in Los Angeles", entity_spans=[(17, 28), (0, 7)]),  # tail first, span at the end
    dict(text="Ünïcödé wörds 🙂 naïve(café) résumé", entity_spans=[(22, 26), (8, 13)]),
    dict(text="  Top seed Ana Ivanovic said on Thursday", entity_spans=[(11, 23), (32, 40)]),
]
SPAN_CASES = [
    dict(text="Beyoncé lives in Los Angeles.", entity_spans=[(0, 7), (17, 28), (8, 13), (0, 13), (17, 20)]),
    dict(text="Ünïcödé wörds 🙂 naïve(café) résumé", entity_spans=[(0, 7), (22, 26), (28, 34), (8, 15)]),
]


@pytest.mark.parametrize("prefix_space", [True, False])
@pytest.mark.parametrize("case", range(len(PAIR_CASES)))
def test_entity_pair_classification_markers(files, case, prefix_space):
    kwargs = PAIR_CASES[case]
    task = dict(add_prefix_space=prefix_space, task="entity_pair_classification")
    ours = LukeTokenizer.from_dir(files, **task).encode(**kwargs)
    theirs = hf_tokenizer(files, **task)(**kwargs)
    assert ours.input_ids == theirs["input_ids"]
    assert ours.entity_ids == theirs["entity_ids"] == [ENTITIES["[MASK]"], ENTITIES["[MASK2]"]]
    assert ours.entity_position_ids == theirs["entity_position_ids"]


def test_entity_pair_spans_must_not_overlap_or_leave_the_text(files):
    tokenizer = LukeTokenizer.from_dir(files, add_prefix_space=True, task="entity_pair_classification")
    with pytest.raises(ValueError, match="overlap"):
        tokenizer.encode("Beyoncé lives in Los Angeles.", entity_spans=[(0, 13), (8, 28)])
    with pytest.raises(ValueError, match=r"span \(17, 40\) is not inside the text \(29 characters\)"):
        tokenizer.encode("Beyoncé lives in Los Angeles.", entity_spans=[(0, 7), (17, 40)])


@pytest.mark.parametrize("case", range(len(SPAN_CASES)))
def test_entity_span_classification_positions(files, case):
    kwargs = SPAN_CASES[case]
    task = dict(add_prefix_space=True, task="entity_span_classification")
    tokenizer = LukeTokenizer.from_dir(files, **task)
    ours = tokenizer.encode(**kwargs)
    theirs = hf_tokenizer(files, **task)(**kwargs)
    for name in ("input_ids", "entity_ids", "entity_position_ids", "entity_start_positions", "entity_end_positions"):
        assert getattr(ours, name) == theirs[name], name
    batch = tokenizer.pad([ours, tokenizer.encode(**SPAN_CASES[1 - case])])  # to the longest
    padded = hf_tokenizer(files, **task)([kwargs["text"], SPAN_CASES[1 - case]["text"]],
                                         entity_spans=[kwargs["entity_spans"], SPAN_CASES[1 - case]["entity_spans"]],
                                         padding=True)
    for name in ("entity_start_positions", "entity_end_positions", "entity_attention_mask", "entity_position_ids"):
        np.testing.assert_array_equal(batch[name], np.array(padded[name]), err_msg=name)


def test_span_classification_truncation_drops_spans_past_the_end(files):
    kwargs = SPAN_CASES[0]
    tokenizer = LukeTokenizer.from_dir(files, add_prefix_space=True, task="entity_span_classification")
    full, cut = tokenizer.encode(**kwargs), tokenizer.encode(**kwargs, max_length=6)
    kept = [k for k, end in enumerate(full.entity_end_positions) if end < 5]  # tokens 1..4 survive
    assert cut.input_ids == full.input_ids[:5] + [tokenizer.sep_id]
    assert cut.entity_start_positions == [full.entity_start_positions[k] for k in kept]
    assert cut.entity_end_positions == [full.entity_end_positions[k] for k in kept]
    assert 0 < len(kept) < len(full.entity_ids)
