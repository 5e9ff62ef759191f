"""Inference programs: saved with named outputs, run by name through `paddle.inference` or ONNX Runtime.

In PIR, `save_inference_model` names the outputs `fetch_name_0`, … unless a
value already carries a name (only feeds, parameters and shadow outputs do).
Predictors are easier to use with meaningful names, so the saved program's
fetch ops are renamed afterwards (their `name` attribute is all that
`paddle.inference` reads). `export_onnx` converts a saved program with
paddle2onnx into `PREFIX.onnx`, whose inputs and outputs keep those names, so
one `InferenceProgram` runs either file (`backend=`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import paddle

from engine.errors import CheckpointError, PipelineError

BACKENDS = ("paddle", "onnxruntime")
_ONNX_EXTRA = "pip install paddle2onnx==2.1.0 onnxruntime (the project's [onnx] extra)"


def save_inference_program(prefix: str | Path, feeds: list, fetches: dict, exe, program, onnx: bool = False) -> str:
    """Saves `program` for `paddle.inference` with the given feeds and {name: value} outputs
    (`PREFIX.json` + `PREFIX.pdiparams`); `onnx`: also `PREFIX.onnx` (`export_onnx`)."""
    prefix = str(prefix)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    paddle.static.save_inference_model(prefix, feeds, list(fetches.values()), exe, program=program)
    rename_fetches(f"{prefix}.json", list(fetches))
    if onnx:
        export_onnx(prefix)
    return prefix


def fastest_backend() -> str:
    """`onnxruntime` when the [onnx] extra is installed (it runs these programs faster on CPU), else
    `paddle`: what `--backend auto` picks."""
    try:
        require_onnx()
        import onnxruntime  # noqa: F401
    except (PipelineError, ImportError):
        return "paddle"
    return "onnxruntime"


def require_onnx() -> None:
    """Raises unless paddle2onnx (and so ONNX export) is installed."""
    try:
        import onnx  # noqa: F401
        import paddle2onnx  # noqa: F401
    except ImportError:
        raise PipelineError(f"ONNX export needs paddle2onnx: {_ONNX_EXTRA}") from None


def export_onnx(prefix: str | Path, output: str | Path | None = None) -> str:
    """Converts the saved program `PREFIX.json` + `.pdiparams` to ONNX (opset 17) at `output`
    (default `PREFIX.onnx`) with paddle2onnx; returns the file's path."""
    require_onnx()
    import onnx
    import paddle2onnx

    prefix = str(prefix)
    output = str(output or f"{prefix}.onnx")
    # Written beside, then renamed: a reader never sees half a file.
    partial = f"{output}.partial"
    # No Polygraphy folding: ONNX Runtime's own optimizer gives the same speed
    # (measured on the ELMo export), and Polygraphy may pip-install at run time.
    with _stdout_silenced():  # paddle2onnx narrates its progress on stdout, which is the user's output
        paddle2onnx.export(f"{prefix}.json", f"{prefix}.pdiparams", partial, opset_version=17, optimize_tool="none")
    try:
        # paddle2onnx writes the file even when its checker rejects it.
        onnx.checker.check_model(partial)
    except (onnx.checker.ValidationError, FileNotFoundError) as e:
        Path(partial).unlink(missing_ok=True)
        raise PipelineError(f"paddle2onnx could not convert {prefix}.json: {str(e).strip().splitlines()[0]}") from None
    Path(partial).replace(output)
    return output


@contextlib.contextmanager
def _stdout_silenced():
    """Sends what this process writes to its stdout (C++ and Python alike) to /dev/null in the block."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def rename_fetches(program_file: str | Path, names: list[str]) -> None:
    """Renames the outputs of a saved PIR program (`fetch_name_i` → `names[i]`)."""
    data = json.loads(Path(program_file).read_text())
    by_default = {f"fetch_name_{i}": name for i, name in enumerate(names)}
    renamed = []

    def visit(node):
        if isinstance(node, dict):
            if node.get("#") == "1.fetch":
                for attr in node.get("A", []):
                    if attr.get("N") == "name" and attr["AT"].get("D") in by_default:
                        renamed.append(attr["AT"]["D"])
                        attr["AT"]["D"] = by_default[attr["AT"]["D"]]
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(data)
    if sorted(renamed) != sorted(by_default):
        raise RuntimeError(f"{program_file}: expected fetch ops {sorted(by_default)}, found {sorted(renamed)}")
    Path(program_file).write_text(json.dumps(data))



class InferenceProgram:
    """Runs a saved program by name: `run({input name: array}) → {output name: array}`.

    `backend="paddle"` runs `PREFIX.json` + `PREFIX.pdiparams` with
    `paddle.inference`, on the first card when this Paddle build has CUDA and
    sees one (`device="auto"`), else on the CPU; `"onnxruntime"` runs
    `PREFIX.onnx` (from `export_onnx`) with ONNX Runtime's CPU provider. CPU
    work uses `threads` threads.
    """

    def __init__(self, prefix: str | Path, threads: int = 2, onednn: bool = False, backend: str = "paddle",
                 device: str = "auto"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        prefix = str(prefix)
        self.backend = backend
        if backend == "onnxruntime":
            self._session = _onnx_session(prefix, threads)
            self.input_names = [i.name for i in self._session.get_inputs()]
            self.output_names = [o.name for o in self._session.get_outputs()]
            return
        from paddle import inference

        if not Path(prefix + ".json").is_file():
            raise CheckpointError(f"no inference program at {prefix}.json")
        config = inference.Config(prefix + ".json", prefix + ".pdiparams")
        config.disable_glog_info()
        config.set_cpu_math_library_num_threads(threads)
        if device == "gpu" or (device == "auto" and paddle.is_compiled_with_cuda()
                               and paddle.device.cuda.device_count() > 0):
            config.enable_use_gpu(256, 0)  # initial memory pool (MB), card 0 (CUDA_VISIBLE_DEVICES picks it)
        elif onednn:
            config.enable_mkldnn()
        self._predictor = inference.create_predictor(config)
        self.input_names = self._predictor.get_input_names()
        self.output_names = self._predictor.get_output_names()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise KeyError(f"missing inputs: {', '.join(missing)} (the program takes {', '.join(self.input_names)})")
        if self.backend == "onnxruntime":
            values = self._session.run(self.output_names, {n: np.ascontiguousarray(feeds[n]) for n in self.input_names})
            return dict(zip(self.output_names, values))
        for name in self.input_names:
            value = np.ascontiguousarray(feeds[name])
            handle = self._predictor.get_input_handle(name)
            handle.reshape(value.shape)
            handle.copy_from_cpu(value)
        self._predictor.run()
        return {name: self._predictor.get_output_handle(name).copy_to_cpu() for name in self.output_names}


def _onnx_session(prefix: str, threads: int):
    try:
        import onnxruntime
    except ImportError:
        raise PipelineError(f"the onnxruntime backend needs onnxruntime: {_ONNX_EXTRA}") from None
    if not Path(prefix + ".onnx").is_file():
        raise CheckpointError(f"no ONNX program at {prefix}.onnx (export with --onnx, or train with "
                              "train.export_onnx=true)")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its shape-merging notices about converted loops are harmless
    return onnxruntime.InferenceSession(prefix + ".onnx", options, providers=["CPUExecutionProvider"])


def run_in_batches(run: Callable[[dict], dict], arrays: dict[str, np.ndarray], batch_size: int) -> dict:
    """`run(feed) → {name: array}` over row slices of `arrays` (equal lengths), outputs concatenated by name."""
    rows = len(next(iter(arrays.values())))
    parts = [run({k: v[i:i + batch_size] for k, v in arrays.items()}) for i in range(0, rows, batch_size)]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
