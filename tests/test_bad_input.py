"""Bad input: one clear error of our own, naming the file and line, the key, or the variable."""

from __future__ import annotations

import json

import numpy as np
import paddle
import pytest

from engine.errors import CheckpointError, ConfigError, DataError, PipelineError

SPECIALS = "<S>\n</S>\n<UNK>\n"


def vocab_file(tmp_path, text):
    path = tmp_path / "v.txt"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def load_vocab(tmp_path, text):
    from reader.vocab import Vocabulary

    Vocabulary.load(vocab_file(tmp_path, text))


def encode(tmp_path, data: bytes):
    from reader.shards import encode_shard
    from reader.vocab import Vocabulary

    path = tmp_path / "shard.txt"
    path.write_bytes(data)
    encode_shard(str(path), Vocabulary(["<S>", "</S>", "<UNK>", "a"]))


def elmo_config(tmp_path, text="", overrides=()):
    from bilm.pretrain import ElmoConfig
    from engine.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config(ElmoConfig, path, list(overrides))


def variables_dir(tmp_path, files: dict):
    from engine.variables import write_tensor

    for name, value in files.items():
        write_tensor(tmp_path / name, np.asarray(value, np.float32))
    return tmp_path


def load_into_program(tmp_path, files: dict, strict=True):
    """Loads a directory into a program with w [2,3] and b [3]."""
    from engine.variables import load_variables

    directory = variables_dir(tmp_path, files)
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        paddle.static.create_parameter([2, 3], "float32", attr=paddle.ParamAttr(name="w"))
        paddle.static.create_parameter([3], "float32", attr=paddle.ParamAttr(name="b"))
    paddle.static.Executor(paddle.CPUPlace()).run(startup)
    load_variables(directory, {"w": (2, 3), "b": (3,)}, paddle.CPUPlace(), allow_extra=not strict)


def truncated(tmp_path):
    from engine.variables import write_tensor

    write_tensor(tmp_path / "w", np.ones((2, 3), np.float32))
    write_tensor(tmp_path / "b", np.ones(3, np.float32))
    data = (tmp_path / "w").read_bytes()
    (tmp_path / "w").write_bytes(data[:-5])
    load_into_program(tmp_path, {}, strict=True)


def model_dir(tmp_path, model: dict | None, vocab_text=SPECIALS + "a\n"):
    from bilm.formats import read_model_dir

    (tmp_path / "vocab.txt").write_text(vocab_text)
    if model is not None:
        (tmp_path / "model.json").write_text(json.dumps(model))
    read_model_dir(tmp_path)


GOOD = {"w": np.ones((2, 3)), "b": np.ones(3)}


def squad_with_wrong_start(tmp_path):
    from luke_static.squad.data import read_squad

    data = {"version": "1.1", "data": [{"paragraphs": [{"context": "Paris is in France.", "qas": [
        {"id": "q9", "question": "Where?", "answers": [{"text": "France", "answer_start": 3}]}]}]}]}
    (tmp_path / "squad.json").write_text(json.dumps(data))
    read_squad(tmp_path / "squad.json", strict=True)


def open_entity_without_labels(tmp_path):
    from luke_static.open_entity.data import read_records

    (tmp_path / "oe.json").write_text(json.dumps([{"sent": "Paris is big", "start": 0, "end": 5}]))
    read_records(tmp_path / "oe.json")


def luke_converter_on_a_bilm_tf_directory(tmp_path):
    from luke_static.formats import convert

    (tmp_path / "config.json").write_text(json.dumps({"lstm": {"dim": 4}}))
    convert("hf", tmp_path, tmp_path / "out")


def bilm_tf_options_that_disagree(tmp_path):
    import h5py

    from bilm.cli import import_bilm_tf as main

    (tmp_path / "v.txt").write_text(SPECIALS + "a\n")
    (tmp_path / "options.json").write_text(json.dumps({"lstm": {"dim": 6, "projection_dim": 4, "n_layers": 1}}))
    with h5py.File(tmp_path / "w.hdf5", "w") as f:
        for d in (0, 1):
            prefix = f"RNN_{d}/RNN/MultiRNNCell/Cell0/LSTMCell/"
            f.create_dataset(prefix + "W_0", data=np.ones((8, 20), np.float32))  # dim 5, not 6
            f.create_dataset(prefix + "B", data=np.ones(20, np.float32))
            f.create_dataset(prefix + "W_P_0", data=np.ones((5, 4), np.float32))
    main(["--options", str(tmp_path / "options.json"), "--weights", str(tmp_path / "w.hdf5"),
          "--token-embeddings", str(tmp_path / "w.hdf5"), "--vocab", str(tmp_path / "v.txt"),
          "--output", str(tmp_path / "out")])

CASES = [
    ("vocabulary without <UNK>", DataError, "v.txt: missing special token(s) <UNK>",
     lambda t: load_vocab(t, "<S>\n</S>\na\n")),
    ("duplicate vocabulary entry", DataError, "v.txt:5: duplicate entry 'a' (first on line 4)",
     lambda t: load_vocab(t, SPECIALS + "a\na\n")),
    ("vocabulary not UTF-8", DataError, "v.txt:4: not valid UTF-8",
     lambda t: load_vocab(t, SPECIALS.encode() + b"\xff\xfe\n")),
    ("empty shard glob", DataError, "no training files match",
     lambda t: elmo_config_and_corpus(t)),
    ("bytes that are not UTF-8", DataError, "shard.txt:2: not valid UTF-8", lambda t: encode(t, b"a\na \xc3\x28\n")),
    ("empty shard", DataError, "shard.txt: empty shard", lambda t: encode(t, b"")),
    ("unknown config key", ConfigError, "unknown key 'train.max_stpes' (did you mean 'max_steps'?)",
     lambda t: elmo_config(t, "train:\n  max_stpes: 3\n")),
    ("wrong value type", ConfigError, "'model.dropout' must be a number, got 'high'",
     lambda t: elmo_config(t, "model:\n  dropout: high\n")),
    ("-o on a key that does not exist", ConfigError, "override: unknown key 'optim.momentum'",
     lambda t: elmo_config(t, "", ["optim.momentum=0.9"])),
    ("value out of range", ConfigError, "'model': dropout must be in [0, 1), got 1.5",
     lambda t: elmo_config(t, "model:\n  dropout: 1.5\n")),
    ("checkpoint missing a variable", CheckpointError, "missing variable file(s): b",
     lambda t: load_into_program(t, {"w": np.ones((2, 3))})),
    ("checkpoint with an extra variable", CheckpointError, "variable file(s) the program does not have: stray",
     lambda t: load_into_program(t, {**GOOD, "stray": np.ones(2)})),
    ("checkpoint with a wrong shape", CheckpointError,
     "variable 'w' has shape [3, 2] in the file but [2, 3] in the program",
     lambda t: load_into_program(t, {"w": np.ones((3, 2)), "b": np.ones(3)})),
    ("truncated variable file", CheckpointError, "truncated or corrupt tensor file", truncated),
    ("model directory without model.json", ConfigError, "is not a biLM model directory (no model.json)",
     lambda t: model_dir(t, None)),
    ("model config that disagrees with its vocabulary", ConfigError,
     "model.vocab_size is 9 but the vocabulary has 4 entries",
     lambda t: model_dir(t, {"vocab_size": 9, "softmax": "full"})),
    ("sampled softmax with more samples than words", ConfigError, "model.num_samples (8000) must be smaller",
     lambda t: model_dir(t, {"vocab_size": 4})),
    ("SQuAD answer_start that misses its answer (strict)", DataError,
     "question q9: answer_start 3 does not point at 'France'", squad_with_wrong_start),
    ("Open Entity record without labels", DataError, "record 0 has no labels", open_entity_without_labels),
    ("LUKE converter pointed at another format", ConfigError, "not a LUKE config (no hidden_size)",
     luke_converter_on_a_bilm_tf_directory),
    ("bilm-tf options that disagree with the weights", CheckpointError,
     "LSTMCell/B has shape [20] but options.json (dim 6, projection_dim 4) implies [24]",
     bilm_tf_options_that_disagree),
]


def elmo_config_and_corpus(tmp_path):
    from bilm.pretrain import resolve_corpus

    cfg = elmo_config(tmp_path, "", ["data.source=files", f"data.train={tmp_path}/none-*.txt",
                                      f"data.dev={tmp_path}/none", f"data.vocab={tmp_path}/v.txt"])
    resolve_corpus(cfg)


@pytest.mark.parametrize("name, error, message, make", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_error(tmp_path, static_scope, name, error, message, make):
    with pytest.raises(error) as err:
        make(tmp_path)
    assert isinstance(err.value, PipelineError)
    assert message in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


def test_a_failed_load_changes_nothing(tmp_path, static_scope):
    from engine.variables import load_variables

    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    load_into_program(tmp_path / "good", GOOD)
    bad = variables_dir(tmp_path / "bad", {"w": np.zeros((2, 3)), "b": np.zeros(4)})
    with pytest.raises(CheckpointError):
        load_variables(bad, {"w": (2, 3), "b": (3,)}, paddle.CPUPlace())
    np.testing.assert_array_equal(np.array(static_scope.find_var("w").get_tensor()), np.ones((2, 3)))


def test_a_sentence_longer_than_any_window_streams_through(tmp_path):
    from reader.lm import FW_INPUT, LMStream

    words = " ".join(["a"] * 5000)
    (tmp_path / "long.txt").write_text(words + "\na a\n")
    vocab = vocab_file(tmp_path, SPECIALS + "a\n")
    batches = list(LMStream((str(tmp_path / "long.txt"),), str(vocab), 2, 7)(None))
    assert sum(b.num_tokens for b in batches) == 5001 + 3
    assert all(b.arrays[FW_INPUT].shape == (2, 7) for b in batches)
