"""Training curves: the PNG from a log, overlays, bad logs, missing extras, and what every run draws."""

from __future__ import annotations

import json
import struct
import sys

import pytest

from engine.errors import ConfigError, DataError
from engine.plot import draw, read_log, save_curves

pytest.importorskip("matplotlib")


def write_log(run_dir, steps=(10, 20, 30), evals=((20, {"ppl": 90.0, "unigram_ppl": 300.0, "tokens": 5.0}),),
              ppl=True):
    run_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for i, step in enumerate(steps):
        record = {"step": step, "loss": 5.0 - i, "tokens_per_s": 1000.0 + i, "elapsed_s": i, "eta_s": 1}
        if ppl:
            record["ppl"] = float(2.7 ** (5.0 - i))
        records.append(record)
    records += [{"step": step, "eval": metrics} for step, metrics in evals]
    (run_dir / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run_dir


def png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_two_elmo_runs_overlaid(tmp_path):
    a, b = write_log(tmp_path / "sentence"), write_log(tmp_path / "stream")
    out = save_curves([a, b], tmp_path / "both.png")
    assert png_size(out) == (800, 900)
    loss, metric, speed = draw([read_log(a), read_log(b)]).axes
    assert len(loss.get_lines()) == 2 and len(speed.get_lines()) == 2
    # Per run: training perplexity, dev points, the unigram line; log scale.
    assert len(metric.get_lines()) == 6 and metric.get_yscale() == "log"
    assert [line.get_label() for line in loss.get_lines()] == ["sentence", "stream"]


@pytest.mark.parametrize("metrics, curves", [({"exact_match": 60.0, "f1": 70.0}, 2),
                                             ({"f1": 0.8, "precision": 0.9}, 1)])
def test_a_tasks_dev_metrics(tmp_path, metrics, curves):
    run = write_log(tmp_path / "task", evals=((10, metrics), (30, metrics)), ppl=False)
    _, metric, _ = draw([read_log(run)]).axes
    assert len(metric.get_lines()) == curves and metric.get_yscale() == "linear"
    assert list(metric.get_lines()[0].get_xdata()) == [10, 30]


@pytest.mark.parametrize("content, message", [
    ("", "no steps or evaluations logged yet"),
    ('{"step": 1, "loss": 2.0}\nnot json\n', "train_log.jsonl:2: not a training-log record"),
    ('{"loss": 2.0}\n', "train_log.jsonl:1: not a training-log record"),
])
def test_a_bad_log_is_one_clear_error(tmp_path, content, message):
    (tmp_path / "train_log.jsonl").write_text(content)
    with pytest.raises(DataError, match=message):
        read_log(tmp_path)
    with pytest.raises(DataError, match="no train_log.jsonl"):
        read_log(tmp_path / "elsewhere")


def test_the_command(tmp_path, capsys):
    from engine.plot import main

    run = write_log(tmp_path / "run")
    assert main([str(run)]) == run / "curves.png" and (run / "curves.png").is_file()
    assert main([str(run), str(write_log(tmp_path / "other")), "--output", str(tmp_path / "x.png")]).is_file()


def test_missing_extras_are_named(tmp_path, monkeypatch):
    from engine.plot import VisualDLWriter

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ConfigError, match=r"needs matplotlib: pip install -e '.\[plot\]'"):
        save_curves([write_log(tmp_path / "run")], tmp_path / "c.png")
    monkeypatch.setitem(sys.modules, "visualdl", None)
    with pytest.raises(ConfigError, match=r"runtime.visualdl needs VisualDL: pip install -e '.\[visualdl\]'"):
        VisualDLWriter.require()


def test_every_run_draws_its_curves(tmp_path):
    from helpers.engine import run as train_regression

    train_regression(tmp_path, "run", rows=4, steps=6, log_every=2)
    assert png_size(tmp_path / "run" / "curves.png") == (800, 900)
    assert read_log(tmp_path / "run").steps == [2, 4, 6]


def test_visualdl_gets_the_same_scalars(tmp_path):
    pytest.importorskip("visualdl", reason="VisualDL not installed (the visualdl extra)")
    from visualdl import LogReader

    from helpers.engine import run as train_regression

    train_regression(tmp_path, "run", rows=4, steps=6, log_every=2, visualdl=True)
    reader = LogReader(file_path=str(next((tmp_path / "run" / "visualdl").iterdir())))
    assert {"train/loss", "train/tokens_per_s", "dev/done"} <= set(reader.get_tags()["scalar"])
    losses = reader.get_data("scalar", "train/loss")
    assert [r.id for r in losses] == [2, 4, 6]
    assert [r.value for r in losses] == pytest.approx(read_log(tmp_path / "run").loss, rel=1e-6)
