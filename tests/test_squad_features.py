"""SQuAD preprocessing: windows, answer spans, max context, entities, the oracle check."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tokenizers")

from engine.errors import DataError  # noqa: E402
from luke_static.squad.answers import normalize_answer  # noqa: E402
from luke_static.squad.data import (  # noqa: E402
    WindowSettings,
    answer_report,
    build_features,
    read_squad,  # noqa: E402
)
from luke_static.tokenizer import LukeTokenizer  # noqa: E402

from helpers.luke import squad_json, write_squad, write_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return LukeTokenizer.from_dir(write_tokenizer(tmp_path_factory.mktemp("tok")), add_prefix_space=True)


@pytest.mark.parametrize("seq, stride", [(40, 8), (64, 16), (512, 128)])
def test_every_answer_maps_to_tokens_and_back(tmp_path, tokenizer, seq, stride):
    examples = read_squad(write_squad(tmp_path / "d.json"))
    features = build_features(examples, tokenizer, WindowSettings(seq, stride, 16), training=True)
    for f in features:
        assert len(f.input_ids) <= seq
        example = examples[f.example]
        if f.answer_in_window:
            first = f.context_start
            text = example.context[f.offsets[f.start - first][0]:f.offsets[f.end - first][1]]
            assert normalize_answer(text) == normalize_answer(example.answers[0][0])
        else:
            assert (f.start, f.end) == (0, 0)
    for index, example in enumerate(examples):
        windows = [f for f in features if f.example == index]
        assert any(f.answer_in_window for f in windows), example.qid
        # Every context token has exactly one window that gives it its maximum context.
        covered = {}
        for f in windows:
            for j, best in enumerate(f.max_context):
                covered[f.window_start + j] = covered.get(f.window_start + j, 0) + best
        assert set(covered.values()) == {1}
    if seq == 40:
        assert len(features) > len(examples)  # the short windows really split contexts


def test_oracle_check_reaches_100(tmp_path, tokenizer, capsys):
    from luke_static.cli import squad_check as main

    model_dir = write_tokenizer(tmp_path / "model")
    report = main([str(write_squad(tmp_path / "d.json")), "--model", str(model_dir), "--max-seq-length", "40",
                   "--doc-stride", "8", "--max-query-length", "16"])
    assert report["reachable"] == report["with_answers"] == 8
    assert report["oracle_exact_match"] == 100.0 and report["oracle_f1"] == 100.0


def test_entities_inside_a_window_become_inputs(tmp_path, tokenizer):
    examples = read_squad(write_squad(tmp_path / "d.json", with_entities=True))
    features = build_features(examples, tokenizer, WindowSettings(512, 128, 16, max_entity_length=4), training=True)
    first = features[0]
    assert first.entity_ids == [tokenizer.entity_vocab["Beyoncé"], tokenizer.entity_vocab["Los Angeles"]]
    example = examples[0]
    for positions, (start, end) in zip(first.entity_positions, [(0, 7), (17, 28)]):
        tokens = [p - first.context_start for p in positions if p >= 0]
        text = example.context[first.offsets[tokens[0]][0]:first.offsets[tokens[-1]][1]]
        assert text.strip() == example.context[start:end]


def _with_bad_offsets(tmp_path):
    """The fixture with q1's answer_start off by a few characters and q2's answer not in its context."""
    data = squad_json()
    qas = data["data"][0]["paragraphs"][0]["qas"]
    qas[0]["answers"][0]["answer_start"] = 3
    qas[1]["answers"] = [{"text": "nowhere in the text", "answer_start": 0}]
    (tmp_path / "bad.json").write_text(json.dumps(data))
    return tmp_path / "bad.json", qas


def test_a_misplaced_answer_is_named_when_strict(tmp_path):
    path, _ = _with_bad_offsets(tmp_path)
    with pytest.raises(DataError, match="question q1: answer_start 3 does not point at 'Los Angeles'"):
        read_squad(path, strict=True)


def test_misplaced_answers_move_to_their_text_or_are_not_trained_on(tmp_path, tokenizer):
    path, qas = _with_bad_offsets(tmp_path)
    examples = read_squad(path)
    good = read_squad(write_squad(tmp_path / "good.json"))
    assert examples[0].answers == good[0].answers and examples[0].moved == 1
    assert examples[1].answers == [] and examples[1].unlocated == ["nowhere in the text"]
    assert examples[1].gold_texts() == ["nowhere in the text"]  # still scored, as the official script does
    report = answer_report(examples)
    assert "1 answer(s) with a wrong answer_start moved" in report and "(1 questions: q1)" in report
    assert "not in the context" in report and qas[1]["id"] in report
    features = build_features(examples, tokenizer, WindowSettings(512, 128, 16), training=True)
    assert {f.example for f in features} == set(range(len(examples))) - {1}
    assert len(build_features(examples, tokenizer, WindowSettings(512, 128, 16), training=False)) == len(examples)


def test_the_nearest_occurrence_wins(tmp_path):
    data = {"data": [{"paragraphs": [{"context": "a cat, a dog, a cat", "qas": [
        {"id": "q", "question": "?", "answers": [{"text": "a cat", "answer_start": 13}]}]}]}]}
    (tmp_path / "d.json").write_text(json.dumps(data))
    assert read_squad(tmp_path / "d.json")[0].answers == [("a cat", 14)]


def test_squad_check_reports_repaired_answers(tmp_path, capsys):
    from luke_static.cli import squad_check as main

    path, _ = _with_bad_offsets(tmp_path)
    report = main([str(path), "--model", str(write_tokenizer(tmp_path / "model")), "--verbose"])
    assert report["moved_answers"] == 1 and report["unlocated_answers"] == 1
    assert report["reachable"] == report["with_answers"] == 7
    assert "note: 1 answer(s) with a wrong answer_start moved" in capsys.readouterr().out
