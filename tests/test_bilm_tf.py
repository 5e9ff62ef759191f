"""bilm-tf / AllenNLP interoperability against an independent numpy bilm-tf."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from engine.errors import CheckpointError, ConfigError

from helpers.bilm import SENTENCES, H, L, NumpyBilmTf, P, dump

WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran"]


def write_bilm_tf(root: Path, seed=0, extra_datasets=None, n_layers=L, emb_rows=None):
    rng = np.random.default_rng(seed)
    vocab = ["<S>", "</S>", "<UNK>", *WORDS]
    (root / "vocab.txt").write_text("\n".join(vocab))  # no final newline: the last line still counts
    options = {"lstm": {"dim": H, "projection_dim": P, "n_layers": n_layers, "cell_clip": 2.0, "proj_clip": 1.5,
                        "use_skip_connections": True},
               "char_cnn": {"activation": "relu", "embedding": {"dim": 4}}}
    (root / "options.json").write_text(json.dumps(options))
    weights = {}
    for d in (0, 1):
        for layer in range(L):
            prefix = f"RNN_{d}/RNN/MultiRNNCell/Cell{layer}/LSTMCell/"
            weights[prefix + "W_0"] = rng.normal(0, 0.8, (2 * P, 4 * H)).astype(np.float32)
            weights[prefix + "B"] = rng.normal(0, 0.3, 4 * H).astype(np.float32)
            weights[prefix + "W_P_0"] = rng.normal(0, 0.8, (H, P)).astype(np.float32)
    with h5py.File(root / "weights.hdf5", "w") as f:
        for name, value in {**weights, "char_embed": np.ones((261, 4), np.float32), **(extra_datasets or {})}.items():
            f.create_dataset(name, data=value)
    embedding = rng.normal(0, 1, (emb_rows or len(vocab), P)).astype(np.float32)
    with h5py.File(root / "emb.hdf5", "w") as f:
        f.create_dataset("embedding", data=embedding)
    return NumpyBilmTf(weights, embedding[: len(vocab)], vocab, 2.0, 1.5), weights, embedding


def import_args(root: Path, out: Path) -> list[str]:
    return ["--options", str(root / "options.json"), "--weights", str(root / "weights.hdf5"),
            "--token-embeddings", str(root / "emb.hdf5"), "--vocab", str(root / "vocab.txt"), "--output", str(out)]


@pytest.fixture
def imported(tmp_path, static_scope):
    from bilm.cli import import_bilm_tf as import_main

    reference, weights, embedding = write_bilm_tf(tmp_path)
    import_main(import_args(tmp_path, tmp_path / "model"))
    return reference, tmp_path / "model"


@pytest.mark.parametrize("batch_size, extra", [(1, ()), (3, ()), (8, ()),
                                               (8, ("--max-tokens", "14", "--window", "3")),
                                               (2, ("-n", "2", "--threads", "1"))])
def test_stateless_dump_matches_numpy_bilm_tf(imported, tmp_path, batch_size, extra):
    # Stateless batches are sorted by length (within windows of lines, under a token budget);
    # with -n, worker processes embed them.
    reference, model = imported
    got = dump(model, tmp_path, batch_size, extra=extra)
    assert sorted(got, key=int) == [str(i) for i in range(len(SENTENCES))]
    for i, sentence in enumerate(SENTENCES):
        want = reference.sentence(sentence.split())
        assert got[str(i)].shape == (L + 1, len(sentence.split()), 2 * P)
        np.testing.assert_allclose(got[str(i)], want, atol=1e-5, err_msg=f"sentence {i}")


@pytest.mark.parametrize("batch_size", [3, 5])
def test_stateful_dump_matches_bilm_tf_batching(imported, tmp_path, batch_size):
    reference, model = imported
    got = dump(model, tmp_path, batch_size, stateful=True)
    reference.state = {}
    for first in range(0, len(SENTENCES), batch_size):
        for row, sentence in enumerate(SENTENCES[first:first + batch_size]):
            want = reference.sentence(sentence.split(), row=row, stateful=True)
            np.testing.assert_allclose(got[str(first + row)], want, atol=1e-5, err_msg=f"sentence {first + row}")
    # And the carried state matters.
    assert np.abs(got[str(batch_size)] - reference.sentence(SENTENCES[batch_size].split())).max() > 1e-4


def test_top_and_mix_layers(imported, tmp_path):
    _, model = imported
    everything, top, mix = (dump(model, tmp_path, 4, layers=m) for m in ("all", "top", "mix"))
    np.testing.assert_allclose(top["1"], everything["1"][-1])
    np.testing.assert_allclose(mix["1"], everything["1"].mean(0), atol=1e-6)


def test_import_then_export_reproduces_the_files_exactly(imported, tmp_path, capsys):
    from bilm.cli import export_bilm_tf as export_main

    _, model = imported
    export_main(["--model", str(model), "--output", str(tmp_path / "back")])
    with h5py.File(tmp_path / "weights.hdf5", "r") as a, h5py.File(tmp_path / "back" / "weights.hdf5", "r") as b:
        lstm = [k for k in _datasets(a) if k.startswith("RNN")]
        assert sorted(lstm) == sorted(_datasets(b))
        for name in lstm:
            np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=name)
    with h5py.File(tmp_path / "emb.hdf5", "r") as a, h5py.File(tmp_path / "back" / "token_embeddings.hdf5") as b:
        np.testing.assert_array_equal(a["embedding"][()], b["embedding"][()])
    options = json.loads((tmp_path / "back" / "options.json").read_text())["lstm"]
    assert (options["dim"], options["projection_dim"], options["n_layers"]) == (H, P, L)


def test_a_model_trained_here_survives_export_and_import(tmp_path, static_scope):
    from bilm.cli import export_bilm_tf as export_main
    from bilm.cli import import_bilm_tf as import_main
    from bilm.config import BiLMConfig
    from bilm.formats import write_model_arrays
    from bilm.model import variable_shapes
    from reader.vocab import Vocabulary

    vocab = Vocabulary(["<S>", "</S>", "<UNK>", *WORDS])
    cfg = BiLMConfig(vocab_size=len(vocab), embed_size=P, hidden_size=H, num_layers=L, cell_clip=2.0,
                     proj_clip=1.5, softmax="full")  # forget_bias 0, as trained here
    rng = np.random.default_rng(3)
    arrays = {n: rng.normal(0, 0.7, s).astype(np.float32) for n, s in variable_shapes(cfg).items()}
    (tmp_path / "vocab.txt").write_text("\n".join(vocab.tokens) + "\n")
    vocab = Vocabulary.load(tmp_path / "vocab.txt")
    write_model_arrays(tmp_path / "ours", cfg, vocab, arrays)
    export_main(["--model", str(tmp_path / "ours"), "--output", str(tmp_path / "tf")])
    tf = tmp_path / "tf"
    import_main(["--options", str(tf / "options.json"), "--weights", str(tf / "weights.hdf5"),
                 "--token-embeddings", str(tf / "token_embeddings.hdf5"), "--vocab", str(tf / "vocab.txt"),
                 "--output", str(tmp_path / "again")])
    a, b = dump(tmp_path / "ours", tmp_path, 3), dump(tmp_path / "again", tmp_path, 3)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5)


def _datasets(f) -> list[str]:
    names = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


@pytest.mark.parametrize("case, error, message", [
    ("options dims disagree with the weights", CheckpointError,
     "RNN_0/RNN/MultiRNNCell/Cell0/LSTMCell/B has shape [24] but options.json (dim 7, projection_dim 4) "
     "implies [28]"),
    ("missing dataset", CheckpointError, "missing dataset(s) RNN_1/RNN/MultiRNNCell/Cell1/LSTMCell/B"),
    ("unknown dataset", CheckpointError, "unknown dataset 'RNN_0/extra'"),
    ("embedding rows differ from the vocabulary", CheckpointError,
     "'embedding' has shape [12, 4] but the vocabulary has 11 entries"),
    ("not an options file", ConfigError, "not a bilm-tf options file"),
    ("weights that are not HDF5", CheckpointError, "weights.hdf5: not an HDF5 file"),
])
def test_bad_bilm_tf_inputs(tmp_path, static_scope, case, error, message):
    from bilm.cli import import_bilm_tf as import_main

    write_bilm_tf(tmp_path, extra_datasets={"RNN_0/extra": np.ones(2)} if case == "unknown dataset" else None,
                  emb_rows=12 if case.startswith("embedding") else None)
    if case.startswith("options dims"):
        options = json.loads((tmp_path / "options.json").read_text())
        options["lstm"]["dim"] = 7
        (tmp_path / "options.json").write_text(json.dumps(options))
    if case == "missing dataset":
        with h5py.File(tmp_path / "weights.hdf5", "a") as f:
            del f["RNN_1/RNN/MultiRNNCell/Cell1/LSTMCell/B"]
    if case == "not an options file":
        (tmp_path / "options.json").write_text("[1, 2]")
    if case == "weights that are not HDF5":
        (tmp_path / "weights.hdf5").write_text("hello")
    with pytest.raises(error) as err:
        import_main(import_args(tmp_path, tmp_path / "model"))
    assert message in str(err.value)
    assert not (tmp_path / "model").exists()  # nothing half-written


def test_a_stateful_dump_is_not_split_across_processes(imported, tmp_path, capsys):
    with pytest.raises(SystemExit):
        dump(imported[1], tmp_path, 2, stateful=True, extra=("-n", "2"))
    assert "--stateful carries each batch's state into the next: it runs in one process" in capsys.readouterr().err


@pytest.mark.parametrize("stateful", [False, True])
def test_dump_keeps_a_blank_line_as_an_empty_dataset(imported, tmp_path, stateful, capsys):
    _, model = imported
    (tmp_path / "blank").mkdir()
    (tmp_path / "plain").mkdir()
    got = dump(model, tmp_path / "blank", 2, stateful, sentences=[SENTENCES[0], " ", *SENTENCES[1:3]])
    assert "note: 1 blank line(s) written as datasets without tokens" in capsys.readouterr().out
    assert sorted(got) == ["0", "1", "2", "3"] and got["1"].shape == (got["0"].shape[0], 0, got["0"].shape[2])
    if not stateful:  # every line from a zero state: the others are what a dump without the blank line gives
        plain = dump(model, tmp_path / "plain", 2, sentences=SENTENCES[:3])
        for line, index in ((0, "0"), (2, "1"), (3, "2")):
            np.testing.assert_allclose(got[str(line)], plain[index], atol=1e-6)
