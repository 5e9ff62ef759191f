"""Every input the project reads, mutated: it either works or is the project's one-line error.

Each test starts from a valid sample of one input (a corpus shard, a
vocabulary, the LAC TSV, CoNLL, TACRED, Open Entity, SQuAD, a classification
file, a recipe and `-o` values, model records, tensor files, bilm-tf's HDF5
weights, what the predictors read) and lets hypothesis mutate its bytes: spans deleted, replaced,
duplicated or inserted, lines swapped, the file cut short. The reader must
return, or raise a `PipelineError` whose message is one line and names the
file; anything else (an IndexError, a UnicodeDecodeError, a numpy error)
is a bug. Nothing may be written beside the input. The examples are
derandomized and bounded, so the suite's time and results do not vary.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from engine.errors import PipelineError  # noqa: E402

from helpers.corpus import toy_sentences, toy_tagged  # noqa: E402
from helpers.luke import conll, relation_records, squad_json, typed_records  # noqa: E402

EXAMPLES = 150  # per input: a few seconds for all of them (1,500 each was tried by hand: no failure)
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@st.composite
def mutated(draw, sample: bytes) -> bytes:
    """`sample` with one to three mutations of its bytes or lines."""
    data = bytearray(sample)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "replace", "insert", "duplicate", "swap_lines", "truncate"]))
        n = len(data)
        i = draw(st.integers(0, max(n - 1, 0)))
        j = min(n, i + draw(st.integers(1, 16)))
        if kind == "delete":
            del data[i:j]
        elif kind == "replace":
            data[i:j] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "insert":
            data[i:i] = draw(st.sampled_from([b"\t", b"\n", b"\r\n", b" ", b"\xff\xfe", b"\x00", b"{", b"}", b"[",
                                              b"]", b'"', b",", b"-1", b"999999999999", b"\xe4\xb8\xad", b"NaN",
                                              b"null", b"<UNK>", b"B-", b"I-", "\u3000".encode()]))
        elif kind == "duplicate":
            data[i:i] = data[i:j]
        elif kind == "swap_lines":
            lines = bytes(data).split(b"\n")
            if len(lines) > 2:
                a, b = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
                lines[a], lines[b] = lines[b], lines[a]
                data = bytearray(b"\n".join(lines))
        else:
            del data[i:]
    return bytes(data)


def check(read, path: Path, data: bytes) -> None:
    """`read(path)` over `data` works or raises one `PipelineError` line naming the file; nothing else is
    written in its directory."""
    path.write_bytes(data)
    before = sorted(p.name for p in path.parent.iterdir())
    try:
        read(path)
    except PipelineError as e:
        message = str(e)
        assert "\n" not in message.strip(), f"a multi-line error: {message!r}"
        assert path.name in message or str(path.parent) in message, f"the error does not name the file: {message!r}"
    assert sorted(p.name for p in path.parent.iterdir()) == before, "the reader wrote beside its input"


def fuzz(sample: bytes):
    """A test body over mutations of `sample`."""
    return given(data=mutated(sample))


# -- ELMo's inputs -----------------------------------------------------------------------------

VOCAB = "\n".join(["<S>", "</S>", "<UNK>", *sorted({w for s in toy_sentences(40, 1) for w in s.split()})]) + "\n"
SHARD = "\n".join(toy_sentences(30, 2)) + "\n\n" + "中文 句子 也 在 这里\n"


@FUZZ
@fuzz(VOCAB.encode())
def test_a_vocabulary(tmp_path_factory, data):
    from reader.vocab import Vocabulary

    check(Vocabulary.load, tmp_path_factory.mktemp("vocab") / "vocab.txt", data)


@FUZZ
@fuzz(SHARD.encode())
def test_a_corpus_shard(tmp_path_factory, data):
    from reader.chars import Spelling
    from reader.shards import encode_shard
    from reader.vocab import Vocabulary

    root = tmp_path_factory.mktemp("shard")
    (root / "vocab.txt").write_text(VOCAB)
    vocab = Vocabulary.load(root / "vocab.txt")
    shard = root / "data"
    shard.mkdir()
    check(lambda p: encode_shard(str(p), vocab, Spelling(50)), shard / "shard-0.txt", data)


@FUZZ
@fuzz(("\n".join(toy_tagged(12, 3)) + "\n").encode())
def test_the_lac_tsv(tmp_path_factory, data):
    from reader.tagging import read_tagged

    check(read_tagged, tmp_path_factory.mktemp("lac") / "train.tsv", data)


# -- LUKE's inputs ------------------------------------------------------------------------------


@FUZZ
@fuzz(conll(8, seed=1).encode())
def test_conll(tmp_path_factory, data):
    from luke_static.ner.data import read_conll

    check(read_conll, tmp_path_factory.mktemp("conll") / "eng.train", data)


@FUZZ
@fuzz(json.dumps(relation_records(4, seed=1)).encode())
def test_tacred(tmp_path_factory, data):
    from luke_static.relation.data import read_relations

    check(read_relations, tmp_path_factory.mktemp("tacred") / "train.json", data)


@FUZZ
@fuzz(json.dumps(typed_records()[:4], ensure_ascii=False).encode())
def test_open_entity(tmp_path_factory, data):
    from luke_static.open_entity.data import read_records

    check(read_records, tmp_path_factory.mktemp("oe") / "train.json", data)


@FUZZ
@fuzz(json.dumps(squad_json(), ensure_ascii=False).encode())
def test_squad(tmp_path_factory, data):
    from luke_static.squad.data import read_squad

    check(read_squad, tmp_path_factory.mktemp("squad") / "train-v1.1.json", data)


@FUZZ
@fuzz("text\tlabel\nthe seed won\tsport\n这家餐厅很好吃\t正面\n\nBeyoncé sings\tmusic\n".encode())
def test_a_classification_tsv(tmp_path_factory, data):
    from luke_static.classify.data import Columns, read_examples

    check(lambda p: read_examples(p, Columns()), tmp_path_factory.mktemp("tsv") / "train.tsv", data)


@FUZZ
@fuzz(b'{"text": "the seed won", "label": "sport"}\n{"text": "\\u4e2d", "label": "zh"}\n')
def test_a_classification_jsonl(tmp_path_factory, data):
    from luke_static.classify.data import Columns, read_examples

    check(lambda p: read_examples(p, Columns()), tmp_path_factory.mktemp("jsonl") / "train.jsonl", data)


# -- recipes, overrides and model records ---------------------------------------------------------


@FUZZ
@fuzz(Path(__file__).resolve().parents[1].joinpath("configs", "elmo.yaml").read_bytes())
def test_a_recipe(tmp_path_factory, data):
    from bilm.pretrain import ElmoConfig
    from engine.config import load_config

    check(lambda p: load_config(ElmoConfig, p), tmp_path_factory.mktemp("recipe") / "elmo.yaml", data)


@FUZZ
@given(override=st.sampled_from(["train.max_steps", "model.embed_size", "optim.learning_rate", "data.num_steps",
                                 "model.softmax", "train.export_precision", "runtime.threads", "model.char_cnn"])
       .flatmap(lambda key: st.tuples(st.just(key), st.text(max_size=12))))
def test_an_override(override):
    from bilm.pretrain import ElmoConfig
    from engine.config import load_config

    key, value = override
    try:
        load_config(ElmoConfig, "configs/elmo.yaml", [f"{key}={value}"])
    except PipelineError as e:
        assert "\n" not in str(e).strip() and key.split(".")[0] in str(e)


def model_record(tmp_path_factory, name: str, data: bytes, read) -> None:
    directory = tmp_path_factory.mktemp("model")
    check(lambda p: read(p.parent), directory / name, data)


@FUZZ
@fuzz(json.dumps({"input": "word", "embed_size": 16, "hidden_size": 32, "num_layers": 2, "cell_clip": 3.0}).encode())
def test_an_elmo_model_json(tmp_path_factory, data):
    from bilm.formats import load_model_config

    model_record(tmp_path_factory, "model.json", data, load_model_config)


@FUZZ
@fuzz(json.dumps({"vocab_size": 100, "entity_vocab_size": 20, "hidden_size": 32, "num_hidden_layers": 2,
                  "num_attention_heads": 4, "intermediate_size": 64}).encode())
def test_a_luke_config_json(tmp_path_factory, data):
    from luke_static.formats import load_luke_config

    model_record(tmp_path_factory, "luke_config.json", data, load_luke_config)


@FUZZ
@fuzz(json.dumps({"task": "entity_span_classification", "labels": ["O", "PER", "LOC"], "program": "ner",
                  "settings": {"max_seq_length": 256}}).encode())
def test_a_task_json(tmp_path_factory, data):
    from luke_static.formats import load_task

    model_record(tmp_path_factory, "task.json", data, load_task)


# -- binary files ---------------------------------------------------------------------------------


def tensor_bytes() -> bytes:
    import tempfile

    from engine.variables import write_tensor

    with tempfile.TemporaryDirectory() as tmp:
        write_tensor(Path(tmp) / "w", np.arange(24, dtype=np.float32).reshape(4, 6))
        return (Path(tmp) / "w").read_bytes()


@FUZZ
@fuzz(tensor_bytes())
def test_a_tensor_file(tmp_path_factory, data):
    from engine.variables import read_tensor

    check(read_tensor, tmp_path_factory.mktemp("tensor") / "lstmp_0.w_0", data)


def hdf5_weights() -> bytes:
    import tempfile

    import h5py

    with tempfile.TemporaryDirectory() as tmp:
        with h5py.File(Path(tmp) / "weights.hdf5", "w") as f:
            f.create_dataset("char_embed", data=np.ones((261, 4), np.float32))
            f.create_dataset("RNN_0/RNN/MultiRNNCell/Cell0/LSTMCell/W_0", data=np.ones((24, 64), np.float32))
        return (Path(tmp) / "weights.hdf5").read_bytes()


@FUZZ
@fuzz(hdf5_weights())
def test_bilm_tf_weights(tmp_path_factory, data):
    from bilm.config import BiLMConfig
    from bilm.formats import read_weights

    cfg = BiLMConfig(vocab_size=10, input="char", embed_size=8, hidden_size=16, num_layers=1)
    check(lambda p: read_weights(p, cfg), tmp_path_factory.mktemp("hdf5") / "weights.hdf5", data)


# -- an ELMoForManyLangs model directory (`python -m bilm import-elmoformanylangs`) -------------------


@FUZZ
@fuzz("<oov>\t0\n<bos>\t1\n<eos>\t2\n<pad>\t3\n我们\t4\nthe\t5\n\u3000\t6\n".encode())
def test_an_elmoformanylangs_dictionary(tmp_path_factory, data):
    from bilm.manylangs import read_dictionary

    check(read_dictionary, tmp_path_factory.mktemp("dic") / "word.dic", data)


MANYLANGS_CONFIG = {"encoder": {"name": "elmo", "projection_dim": 8, "cell_clip": 3, "proj_clip": 3, "dim": 16,
                                "n_layers": 2},
                    "token_embedder": {"name": "cnn", "activation": "relu", "filters": [[1, 4], [2, 4]],
                                       "n_highway": 1, "word_dim": 8, "char_dim": 6, "max_characters_per_token": 10},
                    "dropout": 0.1}


@FUZZ
@fuzz(json.dumps(MANYLANGS_CONFIG).encode())
def test_an_elmoformanylangs_config(tmp_path_factory, data):
    from bilm.manylangs import bilm_config, read_config

    def read(path):
        config, _ = read_config(path.parent)
        return bilm_config(config, 10, 12, str(path))

    root = tmp_path_factory.mktemp("zh.model")
    (root / "config.json").write_text(json.dumps({"config_path": "cnn.json"}))
    check(read, root / "cnn.json", data)


def torch_state(legacy: bool) -> bytes:
    import collections
    import io

    import torch

    values = torch.arange(12.0)
    state = collections.OrderedDict(weight=values.reshape(3, 4), bias=values[4:7])  # views of one storage
    buffer = io.BytesIO()
    torch.save(state, buffer, _use_new_zipfile_serialization=not legacy)
    data = buffer.getvalue()
    if legacy:  # its storage key is an address: a fixed one keeps the examples the same from run to run
        (key,) = {m[2] for m in re.finditer(rb"X([\x01-\x20])\x00\x00\x00([0-9]+)", data) if len(m[2]) == m[1][0]}
        data = data.replace(key, b"1" * len(key))
    return data


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_torch_file(tmp_path_factory, legacy):
    pytest.importorskip("torch")
    from engine.weights_io import read_torch_bin

    @FUZZ
    @fuzz(torch_state(legacy))
    def body(data):
        check(read_torch_bin, tmp_path_factory.mktemp("torch") / "encoder.pkl", data)

    body()


# -- what the predictors read (`python -m luke_static predict --input`) ------------------------------


def predictor_read(task_folder: str):
    """The `read` of a task's pipeline, which needs nothing of a loaded export."""
    import importlib

    cls = importlib.import_module(f"luke_static.{task_folder}.predict").PIPELINE
    return lambda path: cls.read(object.__new__(cls), path)


@FUZZ
@fuzz(b'{"id": "q1", "question": "Where does Beyonc\xc3\xa9 live?", "context": "Beyonc\xc3\xa9 lives in LA."}\n'
      b'{"question": "Who?", "context": "Ana Ivanovic won.", "entities": [{"start": 0, "end": 12}]}\n')
def test_question_answering_predictor_input(tmp_path_factory, data):
    check(predictor_read("squad"), tmp_path_factory.mktemp("qa") / "questions.jsonl", data)


@FUZZ
@fuzz(json.dumps([{k: v for k, v in r.items() if k != "relation"} for r in relation_records(3, seed=2)]).encode())
def test_relation_predictor_input(tmp_path_factory, data):
    check(predictor_read("relation"), tmp_path_factory.mktemp("rel") / "pairs.json", data)


@FUZZ
@fuzz(json.dumps([{k: v for k, v in r.items() if k != "labels"} for r in typed_records()[:3]],
                 ensure_ascii=False).encode())
def test_entity_typing_predictor_input(tmp_path_factory, data):
    check(predictor_read("open_entity"), tmp_path_factory.mktemp("typing") / "mentions.json", data)
