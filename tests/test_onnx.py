"""ONNX export and ONNX Runtime serving compute what the Paddle programs do (to 1e-5)."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import paddle
import pytest

from bilm.config import BiLMConfig, CharCNNConfig
from bilm.embedder import ElmoEmbedder, _save_encoder, export_inference_model
from bilm.formats import load_model_variables, read_model_dir, write_model_arrays
from bilm.model import variable_shapes
from engine.errors import CheckpointError, PipelineError
from engine.inference import InferenceProgram, export_onnx, save_inference_program
from engine.variables import get_value, set_value
from reader.vocab import SPECIAL_TOKENS, Vocabulary

from helpers.luke import write_luke_model
from helpers.programs import assert_backends_agree

WORDS = ["the", "cat", "sees", "a", "dog", "river", "today", "."]
SENTENCES = [["the", "cat", "sees", "a", "dog", "."], ["a", "river"], ["the", "dog", "sees", "the", "river", "today"],
             ["unknown", "words", "too"], ["."]]


def random_model(directory: Path, **cfg) -> Path:
    """A model directory holding a small random biLM over WORDS (a character model with `input="char"`)."""
    cfg = BiLMConfig(vocab_size=len(WORDS) + 3, embed_size=8, hidden_size=16, num_layers=2, cell_clip=3,
                     proj_clip=3, softmax="full", **cfg)
    (directory.parent / "vocab.txt").write_text("".join(w + "\n" for w in [*SPECIAL_TOKENS, *WORDS]))
    rng = np.random.default_rng(0)
    arrays = {n: rng.normal(0, 0.3, s).astype(np.float32) for n, s in variable_shapes(cfg).items()}
    return write_model_arrays(directory, cfg, Vocabulary.load(directory.parent / "vocab.txt"), arrays)


def word_feeds(rows: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, steps + 1, rows)
    lengths[0] = steps
    ids = rng.integers(3, len(WORDS) + 3, (rows, steps)) * (np.arange(steps) < lengths[:, None])
    return {"word_ids": ids.astype(np.int64), "lengths": lengths.astype(np.int64)}


@pytest.mark.parametrize("max_length", [None, 7])
def test_elmo_export_runs_in_onnx_runtime(tmp_path, static_scope, max_length):
    model = random_model(tmp_path / "model")
    exe, place = paddle.static.Executor(paddle.CPUPlace()), paddle.CPUPlace()
    cfg, vocab = read_model_dir(model)
    load_model_variables(model, cfg, place, with_softmax=False)
    prefix = export_inference_model(exe, tmp_path / "export", cfg, vocab, max_length, onnx=True)
    # Any length runs one ONNX Loop per layer; a fixed one is unrolled.
    for steps, seed in [(max_length or 5, 0), (max_length or 11, 1)]:
        out = assert_backends_agree(prefix, word_feeds(4, steps, seed))
        assert out["elmo_layers"].shape == (4, 3, steps, 16)
    # Each step's recurrent and projection products, per direction, by one weight matrix (the input
    # products too where shape inference knows their input's leading axis).
    steps = 2 * 2 * cfg.num_layers * (1 if max_length is None else max_length + 2)
    matrices, stacks = weight_products(f"{prefix}.onnx")
    assert matrices == steps + 2 * (cfg.num_layers - stacks)
    if max_length is None:
        assert scanned_loops(f"{prefix}.onnx") == cfg.num_layers
    # Weights in a side file: the Loops' bodies read them from the outer graph.
    portable = _save_encoder(exe, tmp_path / "portable" / "elmo", cfg, vocab, max_length, portable=True)
    export_onnx(portable, f"{prefix}.onnx", external_data_threshold=0)
    assert Path(f"{prefix}.onnx.data").is_file()
    assert_backends_agree(prefix, word_feeds(4, max_length or 9, 2))
    assert weight_products(f"{prefix}.onnx") == (matrices, stacks)
    if max_length is None:
        assert scanned_loops(f"{prefix}.onnx") == cfg.num_layers


def weight_products(path: str) -> tuple[int, int]:
    """How many MatMuls of the graph (and of its loops' bodies) multiply by a constant weight matrix, and
    by a constant stack of them."""
    import onnx

    from engine.onnx_passes import _graphs

    graph = onnx.load(path, load_external_data=False).graph
    ranks = {t.name: len(t.dims) for t in graph.initializer}
    weights = [ranks.get(node.input[1]) for g in _graphs(graph) for node in g.node if node.op_type == "MatMul"]
    return weights.count(2), weights.count(3)


@pytest.mark.parametrize("rows", [2, None])
def test_a_product_by_a_weight_stack_is_split_only_where_the_input_is_known_to_match(rows):
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from engine.onnx_passes import matrix_products as split_products

    weights = np.random.default_rng(0).normal(size=(2, 4, 5)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("MatMul", ["x", "w"], ["z"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, None, 4])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in "yz"],
        [numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.random.default_rng(1).normal(size=(2, 3, 4)).astype(np.float32)
    run = lambda m: onnxruntime.InferenceSession(m.SerializeToString()).run(None, {"x": x})  # noqa: E731
    want = run(model)
    assert split_products(model) == (2 if rows else 0)
    assert [len(t.dims) for t in model.graph.initializer] == ([2, 2] if rows else [3])  # the stack dropped
    for got, expected in zip(run(model), want):
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def scanned_loops(path: str) -> int:
    """How many Loops of the graph collect their steps as scan outputs (no ScatterND buffer left)."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    loops = [node for node in graph.node if node.op_type == "Loop"]
    bodies = [next(a.g for a in loop.attribute if a.name == "body") for loop in loops]
    assert not any(n.op_type == "ScatterND" for body in bodies for n in body.node)
    return sum(len(body.output) - 1 > len(loop.input) - 2 for loop, body in zip(loops, bodies))


@pytest.mark.parametrize("start, rewritten", [(0, 1), (1, 0)])
def test_a_loop_buffer_becomes_a_scan_output_only_where_its_rows_are_the_steps(start, rewritten):
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    from engine.onnx_passes import scan_outputs

    def const(name, value, dtype=np.int64):
        return helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(np.array(value, dtype)))

    # Row `counter` of a [T, 2] buffer gets (counter, counter) at each step, while counter < T.
    body = helper.make_graph([
        const("one", 1), const("shape", [1, 1]), const("axes", [0]), const("pair", [2]), const("T", 5),
        helper.make_node("Cast", ["counter"], ["value"], to=TensorProto.FLOAT),
        helper.make_node("Expand", ["value", "pair"], ["row"]),
        helper.make_node("Unsqueeze", ["row", "axes"], ["rows"]),
        helper.make_node("Reshape", ["counter", "shape"], ["index"]),
        helper.make_node("ScatterND", ["buffer", "index", "rows"], ["buffer_next"]),
        helper.make_node("Add", ["counter", "one"], ["counter_next"]),
        helper.make_node("Less", ["counter_next", "T"], ["more"]),
    ], "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
                helper.make_tensor_value_info("counter", TensorProto.INT64, []),
                helper.make_tensor_value_info("buffer", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info(n, t, None) for n, t in
         (("more", TensorProto.BOOL), ("counter_next", TensorProto.INT64), ("buffer_next", TensorProto.FLOAT))])
    graph = helper.make_graph([
        const("start", start), const("go", True, np.bool_), const("zeros", np.zeros((5, 2)), np.float32),
        helper.make_node("Loop", ["", "go", "start", "zeros"], ["last", "out"], body=body),
    ], "g", [], [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    run = lambda m: onnxruntime.InferenceSession(m.SerializeToString()).run(None, {})[0]  # noqa: E731
    want = run(model)
    assert scan_outputs(model) == rewritten
    np.testing.assert_array_equal(run(model), want)


def test_the_embedder_and_dump_agree_across_backends(tmp_path, static_scope):
    from bilm.cli import dump as dump

    model = random_model(tmp_path / "model")
    for stateful in (False, True):
        ours = ElmoEmbedder(model, backend="paddle", stateful=stateful, max_batch_size=2)
        onnx = ElmoEmbedder(model, stateful=stateful, max_batch_size=2, backend="onnxruntime")
        for i in range(0, len(SENTENCES), 2):  # stateful: each batch continues the rows' states
            np.testing.assert_allclose(onnx.embed(SENTENCES[i:i + 2]), ours.embed(SENTENCES[i:i + 2]), atol=1e-5)

    text = tmp_path / "sentences.txt"
    text.write_text("".join(" ".join(s) + "\n" for s in SENTENCES))
    for backend in ("paddle", "onnxruntime"):
        dump(["--model", str(model), "--input", str(text), "--output", str(tmp_path / f"{backend}.hdf5"),
              "--backend", backend])
    with h5py.File(tmp_path / "paddle.hdf5") as a, h5py.File(tmp_path / "onnxruntime.hdf5") as b:
        assert set(a) == set(b) == {*map(str, range(len(SENTENCES))), "sentence_to_index"}
        for i in range(len(SENTENCES)):
            np.testing.assert_allclose(b[str(i)][()], a[str(i)][()], atol=1e-5)


def test_a_character_model_runs_in_onnx_runtime(tmp_path, static_scope):
    char_cnn = CharCNNConfig(embed_size=4, filters=[[1, 4], [2, 8], [3, 8]], n_highway=1, max_characters=12)
    model = random_model(tmp_path / "model", input="char", char_cnn=char_cnn)
    ours = ElmoEmbedder(model, backend="paddle").embed(SENTENCES)
    onnx = ElmoEmbedder(model, backend="onnxruntime").embed(SENTENCES)
    np.testing.assert_allclose(onnx, ours, atol=1e-5)


def test_luke_export_runs_in_onnx_runtime(tmp_path, static_scope):
    from luke_static.cli import export as export

    luke = write_luke_model(tmp_path / "luke")
    prefix = export(["--model", str(luke), "--output", str(tmp_path / "export" / "luke"), "--onnx"])
    out = assert_backends_agree(prefix, luke_inputs())
    assert out["entity_last_hidden_state"].shape == (2, 3, 32)


def luke_inputs(rows: int = 2, words: int = 12, entities: int = 3) -> dict[str, np.ndarray]:
    """Encoder inputs for the tiny LUKE of `helpers.luke` (the second row's words padded from 9)."""
    rng = np.random.default_rng(0)
    positions = np.full((rows, entities, 4), -1, np.int64)
    positions[:, :, 0], positions[:, 0, 1] = [1, 3, 5], 2
    feeds = {"input_ids": rng.integers(3, 100, (rows, words)), "attention_mask": np.ones((rows, words), np.int64),
             "token_type_ids": np.zeros((rows, words), np.int64), "entity_ids": rng.integers(1, 8, (rows, entities)),
             "entity_attention_mask": np.ones((rows, entities), np.int64),
             "entity_token_type_ids": np.zeros((rows, entities), np.int64), "entity_position_ids": positions}
    feeds["attention_mask"][1, 9:] = 0
    return {k: v.astype(np.int64) for k, v in feeds.items()}


def test_weights_past_the_threshold_go_to_a_side_file_beside_the_graph(tmp_path, static_scope):
    import onnx
    from onnx import numpy_helper

    from luke_static.config import LukeConfig
    from luke_static.model import OUTPUTS, luke_encoder, luke_feeds

    from helpers.luke import SIZES

    program, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(program, startup):
        feeds = luke_feeds()
        out = luke_encoder(LukeConfig(**{**SIZES, "vocab_size": 3000, "entity_vocab_size": 3000}), feeds)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    params = {p.name: get_value(p.name, static_scope) for p in program.global_block().all_parameters()}
    weights = sum(a.nbytes for a in params.values())

    def save(prefix, **kwargs):
        outputs = dict(zip(OUTPUTS, (out.word, out.entity, out.pooled)))
        return save_inference_program(prefix, list(feeds.values()), outputs, exe, program, **kwargs)

    prefix = save(tmp_path / "export" / "luke", onnx=True, external_data_threshold=weights - 1)
    files = sorted(p.name for p in (tmp_path / "export").iterdir())
    assert files == ["luke.json", "luke.onnx", "luke.onnx.data", "luke.pdiparams"]  # nothing partial left
    graph, data = Path(f"{prefix}.onnx"), Path(f"{prefix}.onnx.data")
    assert graph.stat().st_size < weights / 4 and data.stat().st_size >= 0.9 * weights
    onnx.checker.check_model(str(graph))  # by path, as past 2 GiB
    stored = onnx.load(str(graph), load_external_data=False).graph.initializer
    # The tables and dense weights lie in the side file under their names (small ones may stay inline);
    # the w2e query weights, which the graph reads rearranged by head, as ONNX Runtime folded them.
    outside = {t.name: t for t in stored if t.data_location == onnx.TensorProto.EXTERNAL}
    rearranged = {name for name in params if ".w2e_query.weight" in name}
    assert {name for name, value in params.items() if value.nbytes >= 4096} - rearranged <= outside.keys()
    folded = [t for name, t in outside.items() if name not in params]
    assert sorted(int(np.prod(t.dims)) for t in folded) == sorted(params[name].size for name in rearranged)
    assert {e.value for t in stored for e in t.external_data if e.key == "location"} == {"luke.onnx.data"}
    for tensor in onnx.load(str(graph)).graph.initializer:  # the bytes are the parameters'
        if tensor.name in params:
            np.testing.assert_array_equal(numpy_helper.to_array(tensor), params[tensor.name], err_msg=tensor.name)
    want = assert_backends_agree(prefix, luke_inputs())

    # The directory moves with its weights: ONNX Runtime finds them beside the graph.
    shutil.move(tmp_path / "export", tmp_path / "moved")
    moved = str(tmp_path / "moved" / "luke")
    for name, value in InferenceProgram(moved, backend="onnxruntime").run(luke_inputs()).items():
        np.testing.assert_allclose(value, want[name], atol=1e-5, err_msg=name)

    # A failed export changes nothing.
    with open(f"{moved}.pdiparams", "ab") as f:
        f.write(b"\0" * 8)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "moved").iterdir()}
    with pytest.raises(CheckpointError, match=r"luke\.pdiparams: \d+ bytes, but the program's \d+ tensors end at"):
        export_onnx(moved, external_data_threshold=0)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "moved").iterdir()} == before

    # New weights replace the side file's; a one-file export takes it away.
    for name, value in params.items():
        set_value(name, value * 0.5, paddle.CPUPlace(), static_scope)
    save(moved, onnx=True, external_data_threshold=0)
    changed = assert_backends_agree(moved, luke_inputs())
    assert not np.allclose(changed["word_last_hidden_state"], want["word_last_hidden_state"], atol=1e-3)
    export_onnx(moved)
    assert sorted(p.name for p in (tmp_path / "moved").iterdir()) == ["luke.json", "luke.onnx", "luke.pdiparams"]
    assert_backends_agree(moved, luke_inputs())


def test_a_program_paddle2onnx_cannot_convert_is_named_and_leaves_no_file(tmp_path, static_scope):
    # The default while loop writes a tensor array, which paddle2onnx 2.1.0 does not lower.
    model = random_model(tmp_path / "model")
    cfg, vocab = read_model_dir(model)
    load_model_variables(model, cfg, paddle.CPUPlace(), with_softmax=False)
    prefix = export_inference_model(paddle.static.Executor(paddle.CPUPlace()), tmp_path / "export", cfg, vocab)
    with pytest.raises(PipelineError, match=f"paddle2onnx could not convert {prefix}.json: "):
        export_onnx(prefix)
    assert sorted(p.name for p in (tmp_path / "export").glob("elmo.*")) == ["elmo.json", "elmo.pdiparams"]
    with pytest.raises(CheckpointError, match=r"no ONNX program at .*elmo\.onnx \(export with --onnx"):
        InferenceProgram(prefix, backend="onnxruntime")


def test_a_job_without_onnx_export_fails_before_training(tmp_path):
    from engine.config import load_config
    from engine.errors import ConfigError
    from engine.trainer import Trainer
    from tagger.job import TaggerRunConfig, TaggerTraining

    cfg = load_config(TaggerRunConfig, "configs/lac.yaml", ["train.export_onnx=true",
                                                                f"train.output_dir={tmp_path / 'run'}"])
    job = TaggerTraining.__new__(TaggerTraining)  # not constructed (no data needed): the check reads its class
    with pytest.raises(ConfigError, match="train.export_onnx: the TaggerTraining job has no ONNX export"):
        Trainer(job, cfg.train, cfg.optim, cfg.runtime)
    assert not (tmp_path / "run").exists()


def test_dump_takes_the_faster_backend_when_it_can(monkeypatch):
    import sys

    import engine.inference as inference

    assert inference.fastest_backend() == "onnxruntime"  # the test extras include onnx
    monkeypatch.setitem(sys.modules, "paddle2onnx", None)
    assert inference.fastest_backend() == "paddle"


def test_the_embedder_takes_strings_and_raw_text(tmp_path, static_scope):
    model = random_model(tmp_path / "model")
    words = ["the", "cat", "sees", "a", "dog", "today", "."]
    elmo = ElmoEmbedder(model, backend="paddle")
    want = elmo.embed_sentences([words])[0]
    assert want.shape == (3, 7, 16)
    np.testing.assert_array_equal(elmo.embed_sentence(" ".join(words)), want)  # split on whitespace
    raw = ElmoEmbedder(model, backend="paddle", segment="vocab")  # no spaces: cut into the vocabulary's words
    np.testing.assert_array_equal(raw.embed_sentence("thecatseesadogtoday."), want)
    np.testing.assert_array_equal(raw.embed_sentences([words], layers="top")[0], want[-1])
