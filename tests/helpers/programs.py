"""Checks on exported inference programs."""

from __future__ import annotations


def assert_backends_agree(prefix, arrays: dict, rows: int = 8) -> dict:
    """An exported program's ONNX file computes what `paddle.inference` does (to 1e-5) on the first
    `rows` of `arrays` (keys the program does not take are ignored); returns the Paddle outputs."""
    import numpy as np

    from engine.inference import InferenceProgram

    feeds = {name: value[:rows] for name, value in arrays.items()}
    ours = InferenceProgram(prefix).run(feeds)
    onnx = InferenceProgram(prefix, backend="onnxruntime").run(feeds)
    assert ours.keys() == onnx.keys()
    for name in ours:
        np.testing.assert_allclose(onnx[name], ours[name], atol=1e-5, err_msg=name)
    return ours


def predict_records(export, inputs, tmp_path, *flags: str) -> list[dict]:
    """`python -m luke_static predict` over the file `inputs`, in process: its JSON Lines as records."""
    import json

    from luke_static.cli import predict

    output = tmp_path / f"predicted-{len(list(tmp_path.glob('predicted-*')))}.jsonl"
    predict(["--model", str(export), "--input", str(inputs), "--output", str(output), *flags])
    return [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
