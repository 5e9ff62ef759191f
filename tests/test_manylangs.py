"""ELMoForManyLangs imports: tiny random models built with the package's own classes, in its layout,
against the package's own `Embedder.sents2elmo` — through ElmoEmbedder (paddle.inference and ONNX
Runtime), the executor in a user's network, the exported program and `bilm dump`; then the tagger and
continued pretraining on an import, and the files a real download can get wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import paddle
import pytest

pytest.importorskip("elmoformanylangs")

from bilm.manylangs import import_manylangs  # noqa: E402
from engine.errors import CheckpointError, ConfigError  # noqa: E402

from helpers.manylangs import SHIPPED_CONFIG, build_model, reference_layers  # noqa: E402

# Chinese and English; out-of-vocabulary words and characters (未知, dog, x), a word longer than the
# model's 8 spelled characters, and the ideographic space U+3000 that its dictionaries hold as a word.
SENTENCES = [["我们", "喜欢", "自然", "语言", "处理"], ["the", "dog", "sat", "on", "the", "mat", "."],
             ["北京大学很长很长很长很长的词", "未知", "\u3000", "x"], ["我"]]
TOLERANCE = 1e-5

SETTINGS = {  # token encoder: build_model's arguments
    "word+char": {},
    "characters only, legacy torch files": {"word_dim": 0, "legacy": True},
    "words only": {"char_dim": 0},
}


@pytest.fixture(scope="module", params=list(SETTINGS))
def imported(request, tmp_path_factory):
    """(the package's directory, our import) for one token-encoder setting."""
    root = tmp_path_factory.mktemp("manylangs")
    theirs = build_model(root / "zh.model", **SETTINGS[request.param])
    done = import_manylangs(theirs, root / "ours")
    return theirs, root / "ours", done


def assert_close(ours: list, theirs: list) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        assert float(np.abs(a - b).max()) <= TOLERANCE


@pytest.mark.parametrize("backend", ["paddle", "onnxruntime"])
def test_every_layer_equals_the_package(imported, backend):
    from bilm.embedder import ElmoEmbedder

    theirs, ours, done = imported
    embedder = ElmoEmbedder(ours, backend=backend)
    assert_close(embedder.embed_sentences(SENTENCES), reference_layers(theirs, SENTENCES, -2))
    assert embedder.cfg.input == {"word+char": "word+char", "char": "char", "word": "word"}[done.cfg.input]


def test_output_layer_numbers_mean_what_they_mean_in_the_package(imported):
    from bilm.embedder import ElmoEmbedder

    theirs, ours, _ = imported
    embedder = ElmoEmbedder(ours, backend="paddle")
    for output_layer in (-1, 0, 1, 2):
        assert_close(embedder.embed_sentences(SENTENCES, layers=output_layer),
                     reference_layers(theirs, SENTENCES, output_layer))
    assert_close(embedder.embed_sentences(SENTENCES, layers="mix"), reference_layers(theirs, SENTENCES, -1))


def test_in_a_user_network_through_the_executor(imported, static_scope):
    import bilm

    theirs, ours, _ = imported
    model = bilm.ElmoModel.from_dir(ours)
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        tokens = paddle.static.data("tokens", model.input_shape, "int64")
        lengths = paddle.static.data("lengths", [-1], "int64")
        layers = bilm.elmo_encoder(bilm.emb(tokens, model), lengths, model, all_layers=True)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    bilm.load_pretrained(exe, ours, main)
    ids, n = model.inputs(SENTENCES)
    (out,) = exe.run(main, feed={"tokens": ids, "lengths": n}, fetch_list=[layers])
    assert_close([out[i, :, :k] for i, k in enumerate(n)], reference_layers(theirs, SENTENCES, -2))


@pytest.mark.slow
def test_the_exported_program_and_dump(imported, tmp_path, capsys):
    from bilm.cli import dump, export

    theirs, ours, _ = imported
    export(["--model", str(ours), "--output", str(tmp_path / "export"), "--onnx"])
    text = tmp_path / "sentences.txt"
    text.write_text("\n".join(" ".join(s) for s in SENTENCES if "\u3000" not in s) + "\n", encoding="utf-8")
    sentences = [line.split() for line in text.read_text(encoding="utf-8").splitlines()]
    want = reference_layers(theirs, sentences, -1)
    for backend in ("paddle", "onnxruntime"):
        out = tmp_path / f"{backend}.hdf5"
        dump(["--model", str(tmp_path / "export"), "--input", str(text), "--output", str(out), "--layers", "-1",
              "--backend", backend])
        with h5py.File(out) as f:
            assert_close([f[str(i)][()] for i in range(len(sentences))], want)
    assert "fp32, onnxruntime)" in capsys.readouterr().out


def test_what_the_import_wrote_and_said(imported, capsys):
    from bilm.cli import import_elmoformanylangs
    from bilm.formats import read_model_dir

    theirs, ours, done = imported
    cfg, vocab = read_model_dir(ours)
    assert cfg == done.cfg and not Path(ours, "softmax_weight").exists()
    if cfg.input != "char":
        assert {"<S>", "</S>", "<UNK>", "<pad>", "\u3000"} <= set(vocab.tokens)
        assert "<bos>" not in vocab.tokens and done.renamed_words == []
    if cfg.spells:
        assert vocab.characters[:6] == ("<pad>", "<bow>", "<eow>", "<oov>", "<bos>", "<eos>")
        assert "我" in vocab.characters and cfg.char_cnn.spelling == "characters"
    assert set(done.formats.values()) == {"legacy" if "legacy" in str(SETTINGS) and cfg.input == "char" else "zip"}
    import_elmoformanylangs(["--model", str(theirs), "--output", str(ours.parent / "again")])
    printed = capsys.readouterr().out
    assert "imported a 2-layer biLM (cell 16, projection 8" in printed and "torch files:" in printed


def test_the_tagger_trains_on_an_import_and_its_export_predicts(tmp_path, static_scope):
    from engine.config import load_config
    from engine.trainer import Trainer
    from tagger.job import TaggerRunConfig, TaggerTraining
    from tagger.predict import TaggerPredictor

    ours = tmp_path / "ours"
    import_manylangs(build_model(tmp_path / "zh.model"), ours)
    data = _lac_style(tmp_path / "data")
    items = {"data.train": data["train"], "data.dev": data["dev"], "model.elmo_model": str(ours),
             "model.word_embed_size": 16, "model.gru_hidden": 16, "model.gru_layers": 1, "model.elmo_dropout": 0.1,
             "train.output_dir": str(tmp_path / "run"), "train.batch_size": 16, "train.max_steps": 40,
             "train.log_every": 20, "train.save_every": 0, "train.eval_every": 0, "optim.learning_rate": 0.02}
    cfg = load_config(TaggerRunConfig, "configs/lac.yaml", [f"{k}={v}" for k, v in items.items()])
    metrics = Trainer(TaggerTraining(cfg), cfg.train, cfg.optim, cfg.runtime).fit()
    assert metrics["f1"] > 0.5, metrics
    predictor = TaggerPredictor(tmp_path / "run" / "inference")
    tagged = predictor.tag([["我们", "喜欢", "北京"], ["他们", "喜欢", "没见过的字"]])
    assert [len(t) for t in tagged] == [3, 3]
    assert json.loads((tmp_path / "run" / "inference" / "tagger_config.json").read_text())["elmo_input"] == "word+char"


def test_pretraining_continues_from_an_import(tmp_path, static_scope):
    from bilm.embedder import ElmoEmbedder
    from bilm.formats import read_model_dir
    from bilm.model import variable_shapes
    from engine.variables import read_tensor

    from helpers.bilm import tiny_config, train

    theirs = build_model(tmp_path / "zh.model")
    ours = tmp_path / "ours"
    import_manylangs(theirs, ours)
    corpus = tmp_path / "corpus"
    (corpus / "train").mkdir(parents=True)
    (corpus / "dev").mkdir()
    lines = [" ".join(s) for s in SENTENCES[:2] * 20] + ["北京 大学 很 大", "", "我们 喜欢 the cat"]
    (corpus / "train" / "a.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (corpus / "dev" / "a.txt").write_text("我们 喜欢 北京\nthe cat sat\n", encoding="utf-8")
    overrides = {"model.input": "word+char", "model.word_dim": 8, "model.embed_size": 8, "model.hidden_size": 16,
                 "model.char_cnn.embed_size": 6, "model.char_cnn.filters": "[[1,4],[2,4],[3,8]]",
                 "model.char_cnn.max_characters": 10, "model.char_cnn.spelling": "characters",
                 "model.softmax": "full", "train.init_from": str(ours), "train.max_steps": 6,
                 "optim.learning_rate": 1e-4}
    paths = {"train": str(corpus / "train" / "*.txt"), "dev": str(corpus / "dev" / "*.txt"),
             "vocab": str(ours / "vocab.txt")}
    metrics = train(tiny_config(paths, tmp_path / "run", **overrides))
    assert np.isfinite(metrics["ppl"])
    # Every variable started from the import and moved: Adagrad (accumulators from 1.0) moves a weight by at
    # most the learning rate a step.
    trained = tmp_path / "run" / "model"
    for name in variable_shapes(read_model_dir(ours)[0], with_softmax=False):
        change = np.abs(read_tensor(trained / name) - read_tensor(ours / name)).max()
        assert 0 < change <= 6 * 1e-4 * 1.001, name
    assert read_model_dir(trained)[1].characters == read_model_dir(ours)[1].characters
    assert ElmoEmbedder(trained, backend="paddle").embed_sentences(SENTENCES)[0].shape == (3, 5, 16)


def test_the_continued_pretraining_recipe_fits_the_released_models():
    from bilm.manylangs import SHIPPED_CONFIGS, bilm_config
    from bilm.model import variable_shapes
    from bilm.pretrain import ElmoConfig
    from engine.config import load_config
    from reader.chars import CHARACTER_SPECIALS

    characters = CHARACTER_SPECIALS + tuple("北京大学")
    recipe = load_config(ElmoConfig, "configs/elmo_manylangs.yaml", []).model
    recipe = recipe.with_vocab_size(9000).with_characters(characters)
    released = bilm_config(SHIPPED_CONFIGS[SHIPPED_CONFIG], 9000, len(characters))
    assert variable_shapes(recipe, with_softmax=False) == variable_shapes(released, with_softmax=False)
    for key in ("cell_clip", "proj_clip", "forget_bias", "use_skip_connections", "dropout", "char_cnn"):
        assert getattr(recipe, key) == getattr(released, key), key


def _lac_style(root: Path) -> dict[str, str]:
    rng = np.random.default_rng(0)
    people, places, verbs = ["我们", "我", "他们"], ["北京", "大学", "北京大学"], ["喜欢", "处理"]

    def line():
        words = [rng.choice(people), rng.choice(verbs), rng.choice(places)]
        return " ".join(words) + "\tPER-B v-B LOC-B"

    root.mkdir()
    for name, n in (("train", 120), ("dev", 30)):
        (root / f"{name}.tsv").write_text("\n".join(line() for _ in range(n)) + "\n", encoding="utf-8")
    return {"train": str(root / "train.tsv"), "dev": str(root / "dev.tsv")}


# -- the directory a download can get wrong ----------------------------------------------------------


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory) -> Path:
    return build_model(tmp_path_factory.mktemp("pkg") / "zh.model")


def _copy(package_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(package_dir, tmp_path / "zh.model"))


def test_a_config_named_like_the_packages_own_is_found_by_name(package_dir, tmp_path):
    from bilm.manylangs import read_config

    model = _copy(package_dir, tmp_path)
    (model / "config.json").write_text(json.dumps({"config_path": f"/home/someone/configs/{SHIPPED_CONFIG}"}))
    config, source = read_config(model)
    assert source == f"the package's {SHIPPED_CONFIG}"
    assert config["encoder"]["dim"] == 4096 and config["token_embedder"]["char_dim"] == 50
    moved = sorted(model.glob("cnn_*_sample.json"))[0]  # its own file, under another directory, found by name
    (model / "config.json").write_text(json.dumps({"config_path": f"/elsewhere/{moved.name}"}))
    assert read_config(model)[1] == str(moved)


@pytest.mark.parametrize("damage, message", [
    (lambda m: (m / "config.json").unlink(), "no config.json"),
    (lambda m: (m / "config.json").write_text('{"config_path": "nowhere.json"}'), "nowhere.json"),
    (lambda m: _edit_config(m, lambda c: c["token_embedder"].update(name="lstm")), "only 'cnn' can be imported"),
    (lambda m: _edit_config(m, lambda c: c["encoder"].update(dim=32)),
     "'forward_layer_0.input_linearity.weight' has shape [64, 8], the config needs [128, 8]"),
    (lambda m: (m / "char.dic").write_text("".join(f"{c}\t{i}\n" for i, c in enumerate("abcdef"))),
     "missing the package's special entries"),
    (lambda m: (m / "word.dic").write_text("<oov>\t0\n<bos>\t1\nbroken line without an id\n"),
     "word.dic:3: expected 'token<TAB>id'"),
    (lambda m: (m / "encoder.pkl").write_bytes(b"not a torch file"), "not a torch checkpoint"),
])
def test_a_broken_directory_is_one_clear_error(package_dir, tmp_path, damage, message):
    model = _copy(package_dir, tmp_path)
    damage(model)
    with pytest.raises((ConfigError, CheckpointError), match=message.replace("[", r"\[").replace("]", r"\]")):
        import_manylangs(model, tmp_path / "ours")
    assert not (tmp_path / "ours").exists()


def test_dictionary_entries_past_the_table_are_left_out_with_a_note(package_dir, tmp_path):
    model = _copy(package_dir, tmp_path)
    with open(model / "word.dic", "a", encoding="utf-8") as f:
        f.write("extra\t999\n")
    done = import_manylangs(model, tmp_path / "ours")
    assert any("'extra' (999)" in note for note in done.notes)


def _edit_config(model: Path, change) -> None:
    path = next(model.glob("cnn_*_sample.json"))
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


def test_a_torch_file_that_asks_to_run_code_is_refused(tmp_path):
    import os
    import pickle

    from engine.weights_io import read_torch_bin

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path / 'ran'}",)

    for position in range(4):  # the legacy format's three header pickles, then its object
        parts = [0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, {}][:position] + [Payload()]
        (tmp_path / "encoder.pkl").write_bytes(b"".join(pickle.dumps(part, protocol=2) for part in parts))
        with pytest.raises(CheckpointError, match="encoder.pkl: refusing to load"):
            read_torch_bin(tmp_path / "encoder.pkl")
    assert not (tmp_path / "ran").exists()


def test_a_pickle_that_asks_for_a_huge_memo_is_one_error_not_gigabytes(tmp_path):
    """Four damaged bytes of a LONG_BINPUT made C's unpickler zero-fill a memo of 2**31 slots (16 GiB):
    CI was killed for memory. Run under an address-space cap, so a regression fails instead."""
    import subprocess
    import sys

    bomb = b"\x80\x02N" + b"r" + (2**31).to_bytes(4, "little") + b"."
    header = b"".join(pickle_of(part) for part in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    files = {"legacy_header.pkl": bomb, "legacy_object.pkl": header + bomb}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    script = ("import resource, sys\n"
              "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
              "from engine.errors import CheckpointError\n"
              "from engine.weights_io import read_torch_bin\n"
              "for path in sys.argv[1:]:\n"
              "    try:\n"
              "        read_torch_bin(path)\n"
              "    except CheckpointError as e:\n"
              "        print(e)\n")
    run = subprocess.run([sys.executable, "-c", script, *map(str, (tmp_path / n for n in files))],
                         capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "not a torch checkpoint" in lines[0]
    assert "legacy_object.pkl: a damaged torch checkpoint (ValueError: memo index" in lines[1], lines


def pickle_of(value) -> bytes:
    import pickle

    return pickle.dumps(value, protocol=2)


def test_bilm_tf_cannot_hold_an_import(package_dir, tmp_path):
    from bilm.formats import export_bilm_tf

    import_manylangs(package_dir, tmp_path / "ours")
    with pytest.raises(ConfigError, match="bilm-tf has no such token encoder"):
        export_bilm_tf(tmp_path / "ours", tmp_path / "tf")
    assert not (tmp_path / "tf").exists()
