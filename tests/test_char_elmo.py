"""Character-level ELMo against an independent numpy implementation of the bilm-tf spec."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from engine.errors import CheckpointError, ConfigError

from helpers.bilm import CHARS, FILTERS, D, dump, import_char, spec_char_ids, tiny_config, train, write_char_bilm_tf

LONG = "supercalifragilisticexpialidocious-and-then-some-more"  # 53 bytes: truncated to 48
SENTENCES = ["the cat sat", "zebras naïvely gallop", LONG + " ran", "日本 語", "<S> cat </S>",
             "a", "the mat sat on a cat dog", "Übermäßig lange Wörter"]
VOCAB = ["<S>", "</S>", "<UNK>", "the", "cat", "sat", "on", "a", "mat", "dog", "ran"]


def dump_sentences(model: Path, tmp_path: Path, sentences: list[str], batch_size: int, stateful=False):
    return dump(model, tmp_path, batch_size, stateful, sentences=sentences)


@pytest.fixture
def char_model(tmp_path, static_scope):
    reference, weights = write_char_bilm_tf(tmp_path)
    return reference, import_char(tmp_path, tmp_path / "model")


def test_char_ids_follow_the_spec():
    from reader.chars import char_ids, padded_char_ids

    words = ["the", "<S>", "</S>", "<UNK>", "naïve", "日本", LONG, "x" * 48, "<s>"]
    got = char_ids(words)
    assert got.shape == (len(words), CHARS) and got.dtype == np.int64
    for row, word in zip(got, words):
        assert row.tolist() == spec_char_ids(word), word
    batch = padded_char_ids([["a", "b"], ["c"]])
    assert batch.shape == (2, 2, CHARS) and not batch[1, 1].any()


@pytest.mark.parametrize("batch_size", [1, 3])
def test_imported_character_model_matches_numpy_bilm_tf(char_model, tmp_path, batch_size):
    reference, model = char_model
    got = dump_sentences(model, tmp_path, SENTENCES, batch_size)
    for i, sentence in enumerate(SENTENCES):
        np.testing.assert_allclose(got[str(i)], reference.sentence(sentence.split()), atol=1e-5,
                                   err_msg=f"sentence {i}: {sentence}")


def test_stateful_character_dump_matches_bilm_tf_batching(char_model, tmp_path):
    reference, model = char_model
    got = dump_sentences(model, tmp_path, SENTENCES, 3, stateful=True)
    reference.state = {}
    for first in range(0, len(SENTENCES), 3):
        for row, sentence in enumerate(SENTENCES[first:first + 3]):
            want = reference.sentence(sentence.split(), row=row, stateful=True)
            np.testing.assert_allclose(got[str(first + row)], want, atol=1e-5, err_msg=f"sentence {first + row}")


@pytest.mark.parametrize("activation, n_highway, projected", [("tanh", 1, False), ("relu", 0, True)])
def test_encoder_variants(tmp_path, static_scope, activation, n_highway, projected):
    reference, _ = write_char_bilm_tf(tmp_path, seed=1, activation=activation, n_highway=n_highway,
                                      projected=projected, n_characters=261)
    model = import_char(tmp_path, tmp_path / "model")
    got = dump_sentences(model, tmp_path, SENTENCES[:3], 2)
    for i, sentence in enumerate(SENTENCES[:3]):
        np.testing.assert_allclose(got[str(i)], reference.sentence(sentence.split()), atol=1e-5)


def test_export_then_import_round_trip(char_model, tmp_path):
    from bilm.cli import export_bilm_tf as export_main

    _, model = char_model
    export_main(["--model", str(model), "--output", str(tmp_path / "tf")])
    assert not (tmp_path / "tf" / "token_embeddings.hdf5").exists()
    with h5py.File(tmp_path / "weights.hdf5", "r") as a, h5py.File(tmp_path / "tf" / "weights.hdf5", "r") as b:
        names = []
        a.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        assert any(n.startswith("CNN_high_1/") for n in names)
        for name in names:
            np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=name)
    options = json.loads((tmp_path / "tf" / "options.json").read_text())["char_cnn"]
    assert options["filters"] == FILTERS and options["n_characters"] == 262
    again = import_char(tmp_path / "tf", tmp_path / "again")
    for path in model.iterdir():
        if path.name not in ("model.json", "vocab.txt"):
            assert (again / path.name).read_bytes() == path.read_bytes(), path.name


def test_cached_token_table_equals_the_character_path(char_model, tmp_path):
    from bilm.cli import cache_token_embeddings as cache_main
    from bilm.cli import export_bilm_tf as export_main

    reference, model = char_model
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    cache_main(["--model", str(model), "--vocab", str(tmp_path / "vocab.txt"),
                "--output", str(tmp_path / "emb.hdf5"), "--batch-size", "4"])
    with h5py.File(tmp_path / "emb.hdf5", "r") as f:
        table = f["embedding"][()]
    np.testing.assert_allclose(table, reference.token_vectors(VOCAB), atol=1e-5)
    # The table plus the LSTM weights: a word model giving the same vectors for vocabulary words.
    export_main(["--model", str(model), "--output", str(tmp_path / "tf")])
    word = import_char(tmp_path / "tf", tmp_path / "word", "--token-embeddings", str(tmp_path / "emb.hdf5"),
                       "--vocab", str(tmp_path / "vocab.txt"))
    in_vocab = ["the cat sat", "a dog ran on the mat", "<S> cat </S>"]
    chars, words = (dump_sentences(m, tmp_path, in_vocab, 2) for m in (model, word))
    for key in chars:
        np.testing.assert_allclose(words[key], chars[key], atol=1e-5)


def test_downstream_program_and_export_take_character_ids(char_model, tmp_path):
    import paddle

    import bilm
    from bilm.embedder import export_inference_model
    from bilm.formats import load_model_variables, read_model_dir
    from engine.inference import InferenceProgram
    from reader.chars import padded_char_ids

    reference, model_dir = char_model
    sentences = [s.split() for s in SENTENCES[:4]]
    chars = padded_char_ids(sentences)
    lengths = np.array([len(s) for s in sentences], np.int64)
    model = bilm.ElmoModel.from_dir(model_dir)
    assert model.input_shape == [-1, -1, CHARS]
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        ids = paddle.static.data("chars", model.input_shape, "int64")
        lens = paddle.static.data("lengths", [-1], "int64")
        layers = bilm.elmo(ids, lens, model, all_layers=True)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    bilm.load_pretrained(exe, model_dir, main)
    (got,) = exe.run(main, feed={"chars": chars, "lengths": lengths}, fetch_list=[layers])
    for i, words in enumerate(sentences):
        np.testing.assert_allclose(got[i, :, : len(words)], reference.sentence(words), atol=1e-5)

    cfg, vocab = read_model_dir(model_dir)
    load_model_variables(model_dir, cfg, paddle.CPUPlace(), with_softmax=False)
    prefix = export_inference_model(exe, tmp_path / "inference", cfg, vocab)
    predictor = InferenceProgram(prefix)
    served = predictor.run({"char_ids": chars, "lengths": lengths})["elmo_layers"]
    np.testing.assert_allclose(served, got, atol=1e-5)


@pytest.mark.slow
def test_character_pretraining_learns(toy_corpus, tmp_path, static_scope):
    from bilm.formats import read_model_dir
    from bilm.model import EMBEDDING

    overrides = {"model.input": "char", "model.char_cnn.embed_size": 8,
                 "model.char_cnn.filters": "[[1,8],[2,8],[3,16]]",
                 "model.char_cnn.n_highway": 1, "model.char_cnn.max_characters": 16,
                 "train.max_steps": 120, "train.eval_every": 60}
    metrics = train(tiny_config(toy_corpus, tmp_path / "run", **overrides))
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    evals = [r["eval"] for r in log if "eval" in r]
    assert len(evals) == 2 and evals[1]["ppl"] < 0.7 * evals[0]["ppl"], evals
    assert metrics["ppl"] < 0.5 * metrics["unigram_ppl"], metrics
    cfg, _ = read_model_dir(tmp_path / "run" / "model")
    assert cfg.input == "char" and not (tmp_path / "run" / "model" / EMBEDDING).exists()
    assert (tmp_path / "run" / "model" / "CNN_W_cnn_2").is_file()


@pytest.mark.parametrize("case, error, message", [
    ("no char_cnn section", ConfigError, "no 'char_cnn' section, so this is not a character model"),
    ("filter shape", CheckpointError, "CNN/W_cnn_1 has shape [1, 2, 4, 9] but options.json"),
    ("missing highway", CheckpointError, "missing dataset(s) CNN_high_1/W_carry"),
    ("bad n_characters", ConfigError, "char_cnn.n_characters is 300, expected 261 or 262"),
])
def test_bad_character_models_get_one_clear_error(tmp_path, static_scope, case, error, message):
    write_char_bilm_tf(tmp_path)
    options = json.loads((tmp_path / "options.json").read_text())
    if case == "no char_cnn section":
        del options["char_cnn"]
    if case == "bad n_characters":
        options["char_cnn"]["n_characters"] = 300
    (tmp_path / "options.json").write_text(json.dumps(options))
    with h5py.File(tmp_path / "weights.hdf5", "a") as f:
        if case == "filter shape":
            del f["CNN/W_cnn_1"]
            f.create_dataset("CNN/W_cnn_1", data=np.zeros((1, 2, D, 9), np.float32))
        if case == "missing highway":
            del f["CNN_high_1/W_carry"]
    with pytest.raises(error) as info:
        import_char(tmp_path, tmp_path / "model")
    assert message in str(info.value)
    assert not (tmp_path / "model").exists()
