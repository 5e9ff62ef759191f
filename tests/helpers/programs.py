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
