"""The LAC-style tagger end to end: frozen ELMo, learning, export, prediction, bad data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import paddle
import pytest

from engine.config import load_config
from engine.errors import DataError
from engine.trainer import Trainer
from engine.variables import read_tensor
from tagger.job import TaggerRunConfig, TaggerTraining

from helpers.bilm import import_char, tiny_config, train, write_char_bilm_tf
from helpers.corpus import write_toy_corpus, write_toy_tagging


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, toy_corpus_module):
    """A few steps of real pretraining: its checkpoint (softmax, optimizer state and all)."""
    out = tmp_path_factory.mktemp("elmo")
    with paddle.static.scope_guard(paddle.static.Scope()):
        train(tiny_config(toy_corpus_module, out, **{"train.max_steps": 4}))
    return next((out / "checkpoints").iterdir())


@pytest.fixture(scope="module")
def toy_corpus_module(tmp_path_factory):
    return write_toy_corpus(tmp_path_factory.mktemp("corpus"))


def tagger_config(data: dict, out: Path, elmo: Path | None, **extra) -> TaggerRunConfig:
    items = {"data.train": data["train"], "data.dev": data["dev"], "model.use_elmo": elmo is not None,
             "model.elmo_model": str(elmo or ""), "model.word_embed_size": 16, "model.gru_hidden": 16,
             "model.gru_layers": 1, "model.elmo_dropout": 0.1, "train.output_dir": str(out),
             "train.batch_size": 16, "train.max_steps": 80, "train.log_every": 20, "train.save_every": 0,
             "train.eval_every": 0, "optim.learning_rate": 0.02, **extra}
    return load_config(TaggerRunConfig, "configs/lac.yaml", [f"{k}={v}" for k, v in items.items()])


def fit(cfg: TaggerRunConfig) -> dict:
    return Trainer(TaggerTraining(cfg), cfg.train, cfg.optim, cfg.runtime).fit()


@pytest.mark.slow
def test_tagger_with_frozen_elmo_learns_and_leaves_the_bilm_untouched(pretrained, tmp_path, static_scope):
    data = write_toy_tagging(tmp_path / "data")
    metrics = fit(tagger_config(data, tmp_path / "run", pretrained))
    assert metrics["f1"] > 0.9, metrics
    checkpoint = next((tmp_path / "run" / "checkpoints").iterdir())
    bilm_names = [p.name for p in pretrained.iterdir() if p.name.startswith(("lstmp_", "fw_", "bw_", "embedding_para"))
                  and not p.name.endswith("_moment_0")]
    assert len(bilm_names) == 17
    for name in bilm_names:
        np.testing.assert_array_equal(read_tensor(checkpoint / name), read_tensor(pretrained / name), err_msg=name)
    assert np.abs(read_tensor(checkpoint / "ELMo_w")).max() > 1e-4
    assert abs(float(read_tensor(checkpoint / "ELMo_gamma")[0]) - 1.0) > 1e-4
    assert not (checkpoint / "softmax_weight").exists()  # the pretraining softmax was not pulled in


@pytest.mark.slow
def test_exported_tagger_equals_the_decoding_program_and_predicts(pretrained, tmp_path, static_scope, capsys):
    from reader.tagging import TaggingStream
    from tagger.predict import TaggerPredictor
    from tagger.predict import main as predict_main

    data = write_toy_tagging(tmp_path / "data", train=100, dev=20)
    cfg = tagger_config(data, tmp_path / "run", pretrained, **{"train.max_steps": 10})
    job = TaggerTraining(cfg)
    Trainer(job, cfg.train, cfg.optim, cfg.runtime).fit()
    graph, program = job.decoding_program()
    batch = next(iter(TaggingStream(data["dev"], str(tmp_path / "run" / "words.txt"),
                                    str(tmp_path / "run" / "tags.txt"), str(job.elmo.vocab.path), 20)()))
    feed = {n: batch.arrays[n] for n in graph.feeds}
    (want,) = paddle.static.Executor(paddle.CPUPlace()).run(program, feed=feed, fetch_list=[graph.decoded])

    predictor = TaggerPredictor(tmp_path / "run" / "inference")
    sentences = [line.split("\t")[0].split() for line in Path(data["dev"]).read_text().splitlines()]
    tagged = predictor.tag(sentences)
    for row, tags in enumerate(tagged):
        assert tags == [job.tagset.tags[t] for t in want[row, :len(tags)]]

    (tmp_path / "raw.txt").write_text("the cat sees a tree .\n\na dog helps the river today .\n")
    capsys.readouterr()  # the training's log
    assert predict_main(["--model", str(tmp_path / "run" / "inference"), "--input", str(tmp_path / "raw.txt")]) == 3
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]  # one record a line
    assert len(printed) == 3 and printed[1] == {"words": [], "tags": [], "chunks": []}  # a blank line stays
    assert printed[0]["words"] == "the cat sees a tree .".split()
    assert printed[0]["tags"] == predictor.tag([printed[0]["words"]])[0]
    # --segment vocab on text that is already words gives the same tags.
    predict_main(["--model", str(tmp_path / "run" / "inference"), "--input", str(tmp_path / "raw.txt"),
                  "--segment", "vocab"])
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == printed


@pytest.mark.slow
def test_the_tagger_takes_a_character_elmo(tmp_path, static_scope):
    from tagger.predict import TaggerPredictor

    (tmp_path / "tf").mkdir()
    write_char_bilm_tf(tmp_path / "tf")
    elmo = import_char(tmp_path / "tf", tmp_path / "elmo")
    data = write_toy_tagging(tmp_path / "data", train=100, dev=20)
    metrics = fit(tagger_config(data, tmp_path / "run", elmo, **{"train.max_steps": 30}))
    assert metrics["f1"] > 0.3, metrics
    tagged = TaggerPredictor(tmp_path / "run" / "inference").tag([["an", "unseen", "wörd"], ["the", "cat"]])
    assert [len(t) for t in tagged] == [3, 2]


@pytest.mark.slow
def test_the_tagger_runs_without_elmo(tmp_path, static_scope):
    data = write_toy_tagging(tmp_path / "data")
    metrics = fit(tagger_config(data, tmp_path / "run", None))
    assert metrics["f1"] > 0.9, metrics


@pytest.mark.parametrize("line, message", [
    ("the cat\tNP-B", "train.tsv:2: 2 words but 1 tags"),
    ("the cat NP-B NP-I", "train.tsv:2: expected 'words<TAB>tags', found 0 tabs"),
    ("\t", "train.tsv:2: no words"),
])
def test_malformed_lines_name_file_and_line(tmp_path, line, message):
    data = write_toy_tagging(tmp_path / "data", train=5, dev=2)
    text = Path(data["train"]).read_text().splitlines()
    Path(data["train"]).write_text("\n".join([text[0], line, *text[1:]]) + "\n")
    with pytest.raises(DataError, match=message):
        TaggerTraining(tagger_config(data, tmp_path / "run", None))


def test_an_unknown_tag_names_file_and_line(tmp_path):
    data = write_toy_tagging(tmp_path / "data", train=5, dev=2)
    (tmp_path / "tags.txt").write_text("NP-B\nNP-I\n")
    with pytest.raises(DataError, match=r"train.tsv:1: unknown tag 'VP-B'"):
        TaggerTraining(tagger_config(data, tmp_path / "run", None, **{"data.tags": str(tmp_path / "tags.txt")}))
