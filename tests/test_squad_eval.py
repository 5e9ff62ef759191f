"""The SQuAD v1.1 metric on tricky strings."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from luke_static.squad.answers import evaluate, exact_match, f1, normalize_answer


@pytest.mark.parametrize("text, normalized", [
    ("The Eiffel Tower", "eiffel tower"),
    ("  an   apple, a PEAR! ", "apple pear"),
    ("theatre", "theatre"),  # articles only as whole words
    ("Café “Ünïcode” — naïve", "café “ünïcode” — naïve"),  # only ASCII punctuation is removed
    ("rock'n'roll", "rocknroll"),
    ("A", ""),
])
def test_normalization(text, normalized):
    assert normalize_answer(text) == normalized


def test_exact_match_and_f1():
    assert exact_match("the Denver Broncos", "Denver Broncos!") == 1.0
    assert f1("Denver Broncos", "the Denver Broncos team") == pytest.approx(2 * 1.0 * (2 / 3) / (1 + 2 / 3))
    assert f1("a", "the") == 0.0  # both normalise to nothing
    assert f1("cat cat dog", "cat dog dog") == pytest.approx(2 / 3)  # bags, not sets


def test_best_gold_answer_unanswered_questions_and_the_command(tmp_path, capsys):
    data = [{"paragraphs": [{"qas": [
        {"id": "q1", "answers": [{"text": "Denver Broncos"}, {"text": "the Broncos"}]},
        {"id": "q2", "answers": [{"text": "Santa Clara, California"}]},
        {"id": "q3", "answers": [{"text": "gold"}]},
    ]}]}]
    predictions = {"q1": "Broncos", "q2": "Santa Clara"}
    scores = evaluate(data, predictions)
    assert scores["exact_match"] == pytest.approx(100 / 3)  # "Broncos" equals "the Broncos"; q3 unanswered
    assert scores["f1"] == pytest.approx(100 * (1.0 + 2 * 1 * (2 / 3) / (1 + 2 / 3)) / 3)
    assert "Unanswered question q3 will receive score 0." in capsys.readouterr().err
    (tmp_path / "data.json").write_text(json.dumps({"version": "1.1", "data": data}))
    (tmp_path / "pred.json").write_text(json.dumps(predictions))
    out = subprocess.run([sys.executable, "-m", "luke_static", "squad-eval", str(tmp_path / "data.json"),
                          str(tmp_path / "pred.json")], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True).stdout
    assert json.loads(out) == scores


@pytest.mark.parametrize("dataset, predictions, message", [
    ("missing.json", '{"q1": "x"}', "dataset file not found: "),
    ('{"version": "1.1", "data": []}', "not json {", "pred.json: not JSON (line 1, column 1"),
    ('["a list"]', '{"q1": "x"}', "data.json: not a SQuAD dataset"),
    ('{"version": "1.1", "data": []}', '["q1", "x"]', "pred.json: not a predictions file"),
    ('{"version": "1.1", "data": [{"title": "no paragraphs"}]}', '{"q1": "x"}', "a malformed article"),
])
def test_the_evaluator_names_a_bad_file_in_one_line(tmp_path, dataset, predictions, message):
    if dataset != "missing.json":
        (tmp_path / "data.json").write_text(dataset)
    (tmp_path / "pred.json").write_text(predictions)
    run = subprocess.run([sys.executable, "-m", "luke_static", "squad-eval", str(tmp_path / "data.json"),
                          str(tmp_path / "pred.json")], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_a_byte_order_mark_is_read_as_windows_editors_write_it(tmp_path):
    (tmp_path / "data.json").write_text(json.dumps({"version": "1.1", "data": [
        {"paragraphs": [{"qas": [{"id": "q1", "answers": [{"text": "Denver"}]}]}]}]}))
    (tmp_path / "pred.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"q1": "Denver"}).encode())
    out = subprocess.run([sys.executable, "-m", "luke_static", "squad-eval", str(tmp_path / "data.json"),
                          str(tmp_path / "pred.json")], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True).stdout
    assert json.loads(out) == {"exact_match": 100.0, "f1": 100.0}
