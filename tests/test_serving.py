"""Serving: graphs built for serving, int8 and bf16 exports measured at export, the serving device."""

from __future__ import annotations

import collections
import json

import numpy as np
import paddle
import pytest

from engine.errors import ConfigError, PipelineError
from engine.inference import InferenceProgram, onnx_providers, paddle_device
from engine.ops import affine
from engine.precision import AccuracyFloor, OutputCheck, PrecisionError, PrecisionRecord, bf16_unsupported, judge

pytest.importorskip("onnxruntime")

BF16 = bf16_unsupported()
NER_TEXT = ("Ana Ivanovic lives in Los Angeles .\nPeter Blackburn visited Brussels on Monday .\n"
            "The European Commission said on Thursday it disagreed with German advice .\n")


# -- the two forms of a dense layer -----------------------------------------------------


@pytest.mark.parametrize("x_shape, w_shape, b_shape", [
    ((3, 5, 4), (4, 6), (6,)),  # a layer
    ((2, 7, 4), (2, 4, 6), (2, 1, 6)),  # two directions side by side, rows flat
    ((2, 3, 5, 4), (2, 4, 6), (2, 1, 6)),  # two directions side by side, [G, B, T, K]
])
def test_the_serving_form_computes_the_training_form(static_scope, x_shape, w_shape, b_shape):
    rng = np.random.default_rng(0)
    values = {n: rng.normal(size=s).astype(np.float32) for n, s in (("x", x_shape), ("w", w_shape), ("b", b_shape))}
    program = paddle.static.Program()
    with paddle.static.program_guard(program, paddle.static.Program()):
        x, w, b = (paddle.static.data(n, list(v.shape), "float32") for n, v in values.items())
        for v in (x, w, b):
            v.stop_gradient = False
        outputs = [affine(x, w, b, training=True), affine(x, w, b, training=False)]
        weights = paddle.to_tensor(rng.normal(size=outputs[0].shape).astype(np.float32))
        grads = [paddle.static.gradients([(out * weights).sum()], [x, w, b]) for out in outputs]
    trained, served, *both = paddle.static.Executor(paddle.CPUPlace()).run(
        program, feed=values, fetch_list=[*outputs, *grads[0], *grads[1]])
    want = np.matmul(values["x"].reshape(w_shape[0], -1, x_shape[-1]) if len(x_shape) == 4 else values["x"],
                     values["w"])
    want = want.reshape(trained.shape) + (values["b"][:, None] if len(x_shape) == 4 else values["b"])
    np.testing.assert_allclose(trained, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(served, want, rtol=1e-5, atol=1e-5)
    for a, b in zip(both[:3], both[3:]):  # the bias's gradient as a product is the broadcast add's
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_an_encoder_export_reads_its_weights_directly_and_every_dense_layer_quantizes(tmp_path, static_scope):
    import onnx

    from engine.precision import quantize_int8
    from luke_static.formats import export_encoder
    from luke_static.model import variable_shapes

    from helpers.luke import write_luke_model

    model = write_luke_model(tmp_path)
    place = paddle.CPUPlace()
    prefix = export_encoder(paddle.static.Executor(place), place, model, tmp_path / "export" / "luke", onnx=True)
    graph = onnx.load(f"{prefix}.onnx").graph
    ops = collections.Counter(node.op_type for node in graph.node)
    assert ops["Identity"] == 0 and ops["Constant"] == 0, ops
    weights = {t.name for t in graph.initializer}
    dense = [n for n in variable_shapes(json_config(model), with_pooler=True)
             if n.endswith(".weight") and "Norm" not in n and "embeddings.weight" not in n]
    # Each dense layer: one product with its weight, no concatenation (the pooler's, on [B, H], a Gemm).
    products = [node for node in graph.node if node.op_type in ("MatMul", "Gemm") and node.input[1] in weights]
    assert len(products) == len(dense)
    quantized = collections.Counter(n.op_type for n in onnx.load(str(quantize_int8(prefix))).graph.node)
    assert quantized["DynamicQuantizeMatMul"] + quantized["MatMulInteger"] == len(dense), quantized


def json_config(model_dir):
    from luke_static.formats import load_luke_config

    return load_luke_config(model_dir)


# -- measuring ------------------------------------------------------------------------------


def test_the_output_check_measures_difference_cosine_and_top_labels():
    check = OutputCheck()
    want = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [0.0, 0.0, 0.0]], np.float32)
    got = want.copy()
    got[1] = [1.0, 2.0, 3.5]  # the top label moves
    check.add({"logits": want}, {"logits": got})
    s = check.summary()["logits"]
    assert s["max_abs"] == pytest.approx(2.5) and s["top_agreement"] == pytest.approx(2 / 3)
    # The padding row (zeros) is left out of the cosine.
    assert s["cosine"] == pytest.approx((1.0 + (3 + 4 + 3.5) / (np.sqrt(14) * np.sqrt(1 + 4 + 12.25))) / 2)
    floor = AccuracyFloor()
    with pytest.raises(PrecisionError, match=r"agrees with fp32 on 50.00% of the check set, below the floor of 99.00%"):
        judge("int8", {"agreement": 0.5, "outputs": check.summary()}, floor, fp32_is="x serves fp32")
    with pytest.raises(PrecisionError, match=r"logits has cosine 0\.\d+ to fp32 on the check set, below the floor"):
        judge("int8", {"outputs": check.summary()}, floor, fp32_is="x serves fp32")


# -- LUKE task exports -----------------------------------------------------------------------


@pytest.fixture
def ner_model(tmp_path):
    from luke_static.formats import convert

    from helpers.luke import save_hf_luke

    labels = ["O", "PER", "LOC", "ORG", "MISC"]
    _, src = save_hf_luke(tmp_path, "LukeForEntitySpanClassification", max_position_embeddings=520,
                          id2label=dict(enumerate(labels)), label2id={t: i for i, t in enumerate(labels)})
    convert("hf", src, tmp_path / "model")
    (tmp_path / "check.txt").write_text(NER_TEXT)
    return tmp_path / "model"


def luke_export(argv):
    from luke_static.cli import export

    return export([str(a) for a in argv])


def test_an_int8_task_export_is_measured_recorded_and_served(tmp_path, static_scope, ner_model, capsys,
                                                            monkeypatch):
    import engine.inference
    from engine.precision import vnni, write_record
    from luke_static import pipeline

    from helpers.programs import predict_records

    out = tmp_path / "int8"
    luke_export(["--model", ner_model, "--output", out, "--precision", "int8", "--check-text", tmp_path / "check.txt"])
    printed = capsys.readouterr().out
    assert f"exported {out}/ner.int8.onnx (int8)" in printed
    assert "int8 against fp32 on the check set: logits max|Δ|" in printed and "agreement 1.0000; inputs 3" in printed
    record = json.loads((out / "ner.precision.json").read_text())
    assert record["precision"] == "int8" and record["file"] == "ner.int8.onnx"
    assert record["check"]["agreement"] == 1.0 and record["check"]["outputs"]["logits"]["cosine"] > 0.999
    assert record["check"]["weight_bits"] == (8 if vnni() else 7) and "weights in " in printed

    ner = pipeline("ner", out)  # the record chooses the file and the runtime
    assert ner.program.describe() == "int8, onnxruntime, cpu"
    fp32 = pipeline("ner", out, precision="fp32")
    assert fp32.program.describe().startswith("fp32")
    sentences = NER_TEXT.splitlines()
    strip = lambda found: [[{k: v for k, v in e.items() if k != "score"} for e in f] for f in found]  # noqa: E731
    assert strip(ner(sentences)) == strip(fp32(sentences))
    records = predict_records(out, tmp_path / "check.txt", tmp_path)
    assert [r["text"] for r in records] == sentences
    with pytest.raises(ConfigError, match=r"ner: int8 runs in onnxruntime, not paddle; choose backend='onnxruntime'"):
        pipeline("ner", out, backend="paddle")
    # 8-bit weights (made on a CPU with VNNI) served where there is none: said once, served as they are
    write_record(out / "ner", PrecisionRecord("int8", "ner.int8.onnx", {**record["check"], "weight_bits": 8}))
    monkeypatch.setattr(engine.inference, "vnni", lambda: False)
    capsys.readouterr()
    assert pipeline("ner", out).program.describe() == "int8, onnxruntime, cpu"
    assert "its int8 weights use 8 bits (quantized on a CPU with VNNI); this CPU has none" in capsys.readouterr().err

    # Exported again at fp32, it serves fp32: no int8 file or record stays behind.
    luke_export(["--model", ner_model, "--output", out])
    assert not (out / "ner.int8.onnx").exists() and not (out / "ner.precision.json").exists()
    assert pipeline("ner", out, backend="paddle").program.describe() == "fp32, paddle, cpu"


@pytest.mark.parametrize("flag", ["--encoder", "--word-only"])
def test_an_int8_encoder_export_is_measured_on_plain_text(tmp_path, static_scope, ner_model, capsys, flag):
    prefix = tmp_path / "serving" / "luke"
    luke_export(["--model", ner_model, "--output", prefix, flag, "--precision", "int8",
                 "--check-text", tmp_path / "check.txt"])
    printed = capsys.readouterr().out
    assert "int8 against fp32 on the check set: word_last_hidden_state max|Δ|" in printed and "inputs 3" in printed
    outputs = json.loads((tmp_path / "serving" / "luke.precision.json").read_text())["check"]["outputs"]
    assert ("entity_last_hidden_state" in outputs) == (flag == "--encoder")
    assert all(output["cosine"] > 0.99 for output in outputs.values()), outputs
    served = InferenceProgram(prefix)
    assert served.describe() == "int8, onnxruntime, cpu"
    assert ("entity_ids" in served.input_names) == (flag == "--encoder")


def test_a_quantization_below_the_floor_is_one_error_and_leaves_fp32(tmp_path, static_scope, ner_model):
    out = tmp_path / "int8"
    with pytest.raises(PrecisionError, match=r"logits has cosine \d\.\d+ to fp32 on the check set, below the floor "
                                             r"of 0.9999999; nothing int8 was kept \(.*ner.json serves fp32\)"):
        luke_export(["--model", ner_model, "--output", out, "--precision", "int8", "--check-text",
                     tmp_path / "check.txt", "--min-cosine", "0.9999999"])
    assert sorted(p.name for p in out.glob("ner*")) == ["ner.json", "ner.onnx", "ner.pdiparams"]
    InferenceProgram(out / "ner")  # the fp32 export is whole


def test_a_lower_precision_without_a_check_set_is_refused(tmp_path, ner_model, capsys):
    with pytest.raises(SystemExit):
        luke_export(["--model", ner_model, "--output", tmp_path / "out", "--precision", "int8"])
    assert "--precision int8 is measured before it serves: give --check-text FILE" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(BF16 is not None, reason=f"bf16: {BF16}")
def test_a_bf16_task_export_runs_in_paddle_inference_with_onednn(tmp_path, static_scope, ner_model, capsys):
    from luke_static import pipeline

    out = tmp_path / "bf16"
    luke_export(["--model", ner_model, "--output", out, "--precision", "bf16", "--check-text", tmp_path / "check.txt"])
    assert "bf16 against fp32 on the check set" in capsys.readouterr().out
    assert json.loads((out / "ner.precision.json").read_text())["file"] == "ner.json"
    assert pipeline("ner", out).program.describe() == "bf16, paddle, cpu"


def test_bf16_on_a_cpu_without_it_is_one_line_at_export_and_fp32_when_served(tmp_path, static_scope, ner_model,
                                                                            monkeypatch, capsys):
    import engine.inference
    import engine.precision
    from engine.precision import write_record
    from luke_static import pipeline

    out = tmp_path / "out"
    luke_export(["--model", ner_model, "--output", out])
    write_record(out / "ner", PrecisionRecord("bf16", "ner.json"))  # made on a machine that has bf16
    reason = "this CPU has no bf16 instructions (AVX512-BF16 or AMX); oneDNN would emulate them, slower than fp32"
    for module in (engine.precision, engine.inference):
        monkeypatch.setattr(module, "bf16_unsupported", lambda: reason)
    with pytest.raises(SystemExit):
        luke_export(["--model", ner_model, "--output", out, "--precision", "bf16", "--check-text", "x.txt"])
    assert f"--precision bf16: {reason}; use int8 (ONNX Runtime) or fp32" in capsys.readouterr().err
    assert pipeline("ner", out).program.describe() == "fp32, paddle, cpu"
    assert f"serving fp32, not bf16: {reason}" in capsys.readouterr().err


# -- ELMo exports --------------------------------------------------------------------------


def test_an_int8_elmo_export_is_what_dump_and_the_embedder_run(tmp_path, static_scope, capsys):
    import h5py

    from bilm import ElmoEmbedder
    from bilm.cli import dump, export

    from helpers.bilm import tiny_config, train
    from helpers.corpus import write_toy_corpus

    corpus = write_toy_corpus(tmp_path / "corpus", train_sentences=120, dev_sentences=20)
    train(tiny_config(corpus, tmp_path / "run", **{"train.max_steps": 4, "data.num_workers": 0}))
    model, out, text = tmp_path / "run" / "model", tmp_path / "int8", tmp_path / "corpus" / "dev" / "shard-0.txt"
    export(["--model", str(model), "--output", str(out), "--precision", "int8", "--check-text", str(text)])
    printed = capsys.readouterr().out
    assert "int8 against fp32 on the check set: layer_0 max|Δ| 0.00e+00 cos 1.00000; layer_1" in printed
    check = json.loads((out / "elmo.precision.json").read_text())["check"]
    assert check["sentences"] == 20 and all(s["cosine"] > 0.999 for s in check["outputs"].values())

    dump(["--model", str(out), "--input", str(text), "--output", str(tmp_path / "int8.hdf5")])
    assert "tokens/s, int8, onnxruntime)" in capsys.readouterr().out
    dump(["--model", str(model), "--input", str(text), "--output", str(tmp_path / "fp32.hdf5"), "--backend", "paddle"])
    with h5py.File(tmp_path / "int8.hdf5") as int8, h5py.File(tmp_path / "fp32.hdf5") as fp32:
        for name in fp32:
            if name != "sentence_to_index":
                np.testing.assert_allclose(int8[name][()], fp32[name][()], atol=0.05, err_msg=name)
    embedder = ElmoEmbedder(out)
    assert embedder.describe() == "int8, onnxruntime, cpu"
    assert embedder.embed_sentence("the cat sat").shape == (3, 3, 32)
    with pytest.raises(ConfigError, match="is an export, whose program carries no state"):
        ElmoEmbedder(out, stateful=True)

    # a fixed-length export is checked on the check set cut to its length (the dev lines are longer)
    assert max(map(len, map(str.split, text.read_text().splitlines()))) > 6
    fixed = tmp_path / "int8-fixed"
    export(["--model", str(model), "--output", str(fixed), "--max-length", "6", "--precision", "int8",
            "--check-text", str(text)])
    assert json.loads((fixed / "elmo.precision.json").read_text())["check"]["sentences"] == 20
    np.testing.assert_allclose(ElmoEmbedder(fixed).embed_sentence("the cat sat"),
                               embedder.embed_sentence("the cat sat"), atol=0.01)


# -- jobs ----------------------------------------------------------------------------------


def test_a_job_that_cannot_lower_its_export_says_so_before_training(tmp_path, static_scope):
    from engine.optim import OptimConfig
    from engine.runtime import RuntimeConfig
    from engine.trainer import TrainConfig, Trainer

    from helpers.engine import RegressionJob

    def trainer(precision):
        train = TrainConfig(output_dir=str(tmp_path), export_precision=precision)
        return Trainer(RegressionJob(8), train, OptimConfig(), RuntimeConfig())

    with pytest.raises(ConfigError, match=r"train.export_precision: the RegressionJob job exports fp32, not int8"):
        trainer("int8")
    with pytest.raises(ConfigError, match=r"train.export_precision: must be one of fp32, int8, bf16, got 'int4'"):
        trainer("int4")


# -- the serving device ------------------------------------------------------------------------


def test_the_serving_device_follows_what_the_runtime_can_use(monkeypatch):
    import onnxruntime

    import engine.inference

    monkeypatch.setattr(engine.inference, "cuda_cards", lambda: 0)
    assert paddle_device("auto") == paddle_device("cpu") == "cpu"
    with pytest.raises(PipelineError, match="device gpu: this Paddle build sees no CUDA card"):
        paddle_device("gpu")
    monkeypatch.setattr(engine.inference, "cuda_cards", lambda: 2)
    assert paddle_device("auto") == paddle_device("gpu") == "gpu" and paddle_device("cpu") == "cpu"

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert onnx_providers("auto") == (["CPUExecutionProvider"], "cpu")
    with pytest.raises(PipelineError, match="device gpu: ONNX Runtime has no CUDA provider here"):
        onnx_providers("gpu")
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert onnx_providers("auto") == (["CUDAExecutionProvider", "CPUExecutionProvider"], "gpu")
    assert onnx_providers("cpu") == (["CPUExecutionProvider"], "cpu")
