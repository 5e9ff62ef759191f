"""Inference programs: saved with named outputs, run by name through `paddle.inference` or ONNX Runtime.

In PIR, `save_inference_model` names the outputs `fetch_name_0`, … unless a
value already carries a name (only feeds, parameters and shadow outputs do).
Predictors are easier to use with meaningful names, so the saved program's
fetch ops are renamed afterwards (their `name` attribute is all that
`paddle.inference` reads). `export_onnx` converts a saved program with
paddle2onnx into `PREFIX.onnx`, whose inputs and outputs keep those names, so
one `InferenceProgram` runs either file (`backend=`). Weights past protobuf's
2 GiB limit (mLUKE's entity table, luke-large) go to `PREFIX.onnx.data` beside
the graph, ONNX's external-data layout.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import paddle

from engine.atomic import fsync_dir, fsync_file
from engine.errors import CheckpointError, ConfigError, PipelineError, listing
from engine.onnx_passes import matrix_products, scan_outputs
from engine.precision import (
    BACKEND_OF,
    PRECISIONS,
    AccuracyFloor,
    PrecisionRecord,
    bf16_unsupported,
    check_precision,
    judge,
    quantize_int8,
    read_record,
    remove_lowered,
    vnni,
    write_record,
)

BACKENDS = ("paddle", "onnxruntime")
DEVICES = ("auto", "cpu", "gpu")
# Weights above this many bytes go beside the ONNX graph (`export_onnx`): protobuf cannot write a
# message past 2 GiB (2 147 483 647 bytes), and the graph itself needs some room.
EXTERNAL_DATA_THRESHOLD = 2_000_000_000
_PAGE = 4096
_ONNX_EXTRA = "pip install paddle2onnx==2.1.0 onnxruntime (the project's [onnx] extra)"


def save_inference_program(prefix: str | Path, feeds: list, fetches: dict, exe, program, onnx: bool = False,
                           external_data_threshold: int = EXTERNAL_DATA_THRESHOLD) -> str:
    """Saves `program` for `paddle.inference` with the given feeds and {name: value} outputs
    (`PREFIX.json` + `PREFIX.pdiparams`); `onnx`: also `PREFIX.onnx` (`export_onnx`, whose
    `external_data_threshold` is passed on). A lower precision made from an earlier program at
    `prefix` is removed (`engine.precision`)."""
    prefix = str(prefix)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    remove_lowered(prefix)  # made from the program this one replaces
    paddle.static.save_inference_model(prefix, feeds, list(fetches.values()), exe, program=program)
    rename_fetches(f"{prefix}.json", list(fetches))
    if onnx:
        export_onnx(prefix, external_data_threshold=external_data_threshold)
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


def export_onnx(prefix: str | Path, output: str | Path | None = None,
                external_data_threshold: int = EXTERNAL_DATA_THRESHOLD) -> str:
    """Converts the saved program `PREFIX.json` + `.pdiparams` to ONNX (opset 17) at `output`
    (default `PREFIX.onnx`) with paddle2onnx; returns the file's path.

    Weights of more than `external_data_threshold` bytes in all (the default,
    and the most: protobuf cannot write a message past 2 GiB) are written in
    ONNX's external-data layout: the graph in `output`, the weights in
    `OUTPUT.data` beside it, named relatively, so the directory can be moved
    (ONNX Runtime and `onnx.load` look for it beside the graph). Either way
    the files appear complete or not at all, and an earlier export's
    `OUTPUT.data` never outlives its graph.
    """
    require_onnx()
    import onnx

    prefix = str(prefix)
    output = Path(output or f"{prefix}.onnx")
    data = output.with_name(output.name + ".data")
    weights = Path(f"{prefix}.pdiparams")
    external = weights.is_file() and weights.stat().st_size > min(external_data_threshold, EXTERNAL_DATA_THRESHOLD)
    # Converted before anything is written: paddle2onnx aborts the process on some programs.
    if external:
        saved = _saved_parameters(prefix)
        model = onnx.load_from_string(_paddle2onnx(prefix, params=""))
    else:
        converted = _paddle2onnx(prefix, params=str(weights))
    output.parent.mkdir(parents=True, exist_ok=True)
    # Written into a folder beside, then renamed: a reader never sees half a file.
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    try:
        graph = tmp / output.name
        if external:
            _write_with_external_data(prefix, model, saved, graph, data.name)
        else:
            graph.write_bytes(converted)
            del converted
        try:
            # By path: the in-memory check stops at 2 GiB, and this one resolves the external data.
            onnx.checker.check_model(str(graph))
        except onnx.checker.ValidationError as e:
            raise PipelineError(f"paddle2onnx could not convert {prefix}.json: "
                                f"{str(e).strip().splitlines()[0]}") from None
        graph = _folded(graph, data.name if external else None)
        for path in [graph, graph.with_name(data.name)] if external else [graph]:
            fsync_file(path)
        if external:
            # Never the old graph beside the new weights: the old graph goes first.
            output.unlink(missing_ok=True)
            os.replace(graph.with_name(data.name), data)
        os.replace(graph, output)
        if not external:
            data.unlink(missing_ok=True)  # an earlier export's weights: this graph holds its own
        fsync_dir(output.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(output)


def _folded(graph: Path, data_name: str | None) -> Path:
    """The graph at `graph` after ONNX Runtime's basic (portable) offline optimization, saved beside it
    in a folder of its own, under the same names; `graph` itself without ONNX Runtime.

    paddle2onnx writes every weight as a `Constant` node, most behind chains
    of `Identity` nodes and shape arithmetic on constants. Folded, the weights
    become initializers that products read directly, which is what int8
    quantization looks for (`engine.precision`), and a luke-base graph loses
    half its nodes. The basic level keeps standard ONNX operators only, so
    the file runs anywhere the original does (checked: any other domain keeps
    the original). Then the passes of `engine.onnx_passes`: products by a
    stack of weights become one product per weight matrix, and loops
    collect their steps as scan outputs.
    """
    try:
        import onnxruntime
    except ImportError:
        return graph
    import onnx

    folded = graph.parent / "folded" / graph.name
    folded.parent.mkdir()
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folded)
    options.log_severity_level = 3  # it names every constant it drops
    if data_name is not None:
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name", data_name)
    onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    model = onnx.load(str(folded), load_external_data=False)
    if any(node.domain not in ("", "ai.onnx") for node in model.graph.node):
        return graph
    new_weights = matrix_products(model, str(folded.parent))
    if not (scan_outputs(model) or new_weights):
        return folded
    if new_weights and data_name is not None:  # the weights file is written again, the stacks left out
        onnx.load_external_data_for_model(model, str(folded.parent))
        folded.with_name(data_name).unlink()
        onnx.save(model, str(folded), save_as_external_data=True, all_tensors_to_one_file=True, location=data_name)
    else:
        onnx.save(model, str(folded))  # external weights stay where they are
    return folded


def _paddle2onnx(prefix: str, params: str) -> bytes:
    """The ONNX model paddle2onnx makes of `PREFIX.json` with the weights in `params` ("": none)."""
    import paddle2onnx

    # No Polygraphy folding: ONNX Runtime's own optimizer gives the same speed
    # (measured on the ELMo export), and Polygraphy may pip-install at run time.
    try:
        with _stdout_silenced():  # paddle2onnx narrates its progress on stdout, which is the user's output
            model = paddle2onnx.export(f"{prefix}.json", params, None, opset_version=17, optimize_tool="none")
    except SystemExit:  # what its Python side does when the converter raised
        model = None
    if not model:  # what it returns when protobuf refused to serialize the model (past 2 GiB)
        raise PipelineError(f"paddle2onnx could not convert {prefix}.json: it made no model")
    return model


def _write_with_external_data(prefix: str, model, saved: dict, graph: Path, data_name: str) -> None:
    """Writes `model` (converted without weights) to `graph` and the weights it reads to `data_name`
    beside it.

    paddle2onnx 2.1.0 cannot do this itself: it embeds every parameter as a
    Constant node, ignores its `external_file` argument for PIR programs, and
    past 2 GiB protobuf refuses to serialize the model, so it writes an empty
    file. Converted without weights, the graph reads each parameter by its
    Paddle name; each becomes an initializer of that name whose bytes are
    copied straight from `PREFIX.pdiparams` into the data file, so memory
    stays at the graph's size.
    """
    import onnx

    used = _unresolved_names(model.graph)
    unknown = sorted(used - saved.keys())
    if unknown:
        raise PipelineError(f"paddle2onnx could not convert {prefix}.json: its graph reads {listing(unknown)}, "
                            "which are neither parameters nor computed")
    with open(f"{prefix}.pdiparams", "rb") as src, open(graph.with_name(data_name), "wb") as dst:
        for name, (dtype, shape, offset, size) in sorted(saved.items(), key=lambda item: item[1][2]):
            if name not in used:
                continue  # a parameter the graph does not read (ONNX Runtime would drop it)
            dst.write(b"\0" * (-dst.tell() % (_PAGE if size >= _PAGE else 64)))  # aligned, so readers may map
            start = dst.tell()
            _copy_range(src, dst, offset, size)
            tensor = model.graph.initializer.add(name=name, dims=shape,
                                                 data_type=onnx.helper.np_dtype_to_tensor_dtype(dtype),
                                                 data_location=onnx.TensorProto.EXTERNAL)
            for key, value in (("location", data_name), ("offset", start), ("length", size)):
                tensor.external_data.add(key=key, value=str(value))
    onnx.save_model(model, str(graph))


def _saved_parameters(prefix: str) -> dict[str, tuple[np.dtype, tuple[int, ...], int, int]]:
    """name → (dtype, shape, data offset, byte size) of each tensor in `PREFIX.pdiparams`.

    The file holds the program's persistable values one after another in
    name order, each in the tensor-file layout of `engine.variables`; names
    come from the program, as `paddle.static.load_inference_model` takes them.
    Anything that does not add up (count, shapes, length) is an error.
    """
    from paddle.static.pir_io import get_pir_parameters

    from engine.variables import ENUM_TO_DTYPE, decode_desc, read_exact

    program = paddle.pir.Program()
    paddle.base.core.deserialize_pir_program(f"{prefix}.json", program)
    params, others = get_pir_parameters(program)
    shapes = {v.name: tuple(v.shape) for v in params + others if v.persistable}
    path, names = f"{prefix}.pdiparams", sorted(shapes)
    saved, end = {}, os.path.getsize(path)
    with open(path, "rb") as f:
        for name in names:
            version, lod_levels = struct.unpack("<IQ", read_exact(f, 12, path))
            if version != 0 or lod_levels > 16:
                raise CheckpointError(f"{path}: not Paddle's parameter file of {prefix}.json (at '{name}')")
            for _ in range(lod_levels):
                (size,) = struct.unpack("<Q", read_exact(f, 8, path))
                f.seek(size, os.SEEK_CUR)
            _tensor_version, desc_size = struct.unpack("<Ii", read_exact(f, 8, path))
            if not 0 < desc_size < 4096:
                raise CheckpointError(f"{path}: not Paddle's parameter file of {prefix}.json (at '{name}')")
            dtype_enum, shape = decode_desc(read_exact(f, desc_size, path), path)
            if dtype_enum not in ENUM_TO_DTYPE:
                raise CheckpointError(f"{path}: '{name}' has a data type ONNX export does not take ({dtype_enum})")
            if shape != shapes[name] and not int(np.prod(shape)) == int(np.prod(shapes[name])) == 1:  # [] vs [1]
                raise CheckpointError(f"{path}: '{name}' has shape {list(shape)} in the file but "
                                      f"{list(shapes[name])} in {prefix}.json")
            dtype = ENUM_TO_DTYPE[dtype_enum]
            offset, size = f.tell(), int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            saved[name] = (dtype, shape, offset, size)
            f.seek(offset + size)
        stop = f.tell()
    if stop != end:
        raise CheckpointError(f"{path}: {end} bytes, but the program's {len(names)} tensors end at {stop}")
    return saved


def _unresolved_names(graph, outer: frozenset = frozenset()) -> set[str]:
    """Names a graph's nodes (subgraphs included) read that nothing in it or around it defines."""
    defined = set(outer) | {v.name for v in graph.input} | {t.name for t in graph.initializer}
    unresolved = set()
    for node in graph.node:
        unresolved.update(name for name in node.input if name and name not in defined)
        for attr in node.attribute:
            for sub in [attr.g, *attr.graphs] if attr.HasField("g") else attr.graphs:
                unresolved |= _unresolved_names(sub, frozenset(defined))
        defined.update(node.output)
    return unresolved


def _copy_range(src, dst, offset: int, size: int, chunk: int = 64 << 20) -> None:
    src.seek(offset)
    while size:
        block = src.read(min(chunk, size))
        if not block:
            raise CheckpointError(f"{src.name}: truncated")
        dst.write(block)
        size -= len(block)


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
    `paddle.inference`; `"onnxruntime"` runs `PREFIX.onnx` (from
    `export_onnx`; with `PREFIX.onnx.data` beside it when the export has one)
    with ONNX Runtime; `"auto"` takes the runtime the export's precision needs,
    else ONNX Runtime when the export has its ONNX file and the extra is
    installed, else `paddle.inference`.

    `precision="recorded"` serves what the export's precision record says
    (`engine.precision`: int8 runs `PREFIX.int8.onnx` in ONNX Runtime, bf16
    the program in `paddle.inference` with oneDNN's bf16 pass), fp32 without
    one; `"fp32"` (or another precision) chooses. `device`: `auto` takes
    the first card when the runtime can use one (paddlepaddle-gpu, or
    onnxruntime-gpu's CUDA provider), `gpu` insists, `cpu` never does; CPU
    work uses `threads` threads. `backend`, `precision` and `device` say
    afterwards what runs.
    """

    def __init__(self, prefix: str | Path, threads: int = 2, onednn: bool = False, backend: str = "auto",
                 device: str = "auto", precision: str = "recorded"):
        if backend not in ("auto", *BACKENDS):
            raise ConfigError(f"backend must be auto, {' or '.join(BACKENDS)}; got {backend!r}")
        if device not in DEVICES:
            raise ConfigError(f"device must be {' or '.join(DEVICES)}; got {device!r}")
        prefix = str(prefix)
        self.precision, self.backend = serving_choice(prefix, precision, backend)
        if self.backend == "onnxruntime":
            program = f"{prefix}.int8.onnx" if self.precision == "int8" else f"{prefix}.onnx"
            self._session, self.device = _onnx_session(program, threads, device)
            self.input_names = [i.name for i in self._session.get_inputs()]
            self.output_names = [o.name for o in self._session.get_outputs()]
            return
        from paddle import inference

        if not Path(prefix + ".json").is_file():
            raise CheckpointError(f"no inference program at {prefix}.json")
        config = inference.Config(prefix + ".json", prefix + ".pdiparams")
        config.disable_glog_info()
        config.set_cpu_math_library_num_threads(threads)
        self.device = paddle_device(device)
        if self.device == "gpu":
            config.enable_use_gpu(256, 0)  # initial memory pool (MB), card 0 (CUDA_VISIBLE_DEVICES picks it)
            if self.precision == "bf16":
                print(f"note: {prefix}: bf16 is a CPU precision; the card runs the program at fp32", file=sys.stderr)
                self.precision = "fp32"
        elif onednn or self.precision == "bf16":
            config.enable_mkldnn()
            if self.precision == "bf16":
                config.enable_mkldnn_bfloat16()
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

    def describe(self) -> str:
        """What runs, in a few words: `int8, onnxruntime, cpu`."""
        return f"{self.precision}, {self.backend}, {self.device}"


def serving_choice(prefix: str, precision: str, backend: str) -> tuple[str, str]:
    """(precision, backend) that serve the export at `prefix` for these arguments of `InferenceProgram`."""
    if precision == "recorded":
        record = read_record(prefix)
        precision = record.precision if record else "fp32"
    elif precision not in PRECISIONS:
        raise ConfigError(f"precision must be recorded or {', '.join(PRECISIONS)}; got {precision!r}")
    needs = BACKEND_OF.get(precision)
    if needs is not None and backend not in ("auto", needs):
        raise ConfigError(f"{prefix}: {precision} runs in {needs}, not {backend}; "
                          f"choose backend='{needs}', or precision='fp32' for the fp32 program")
    if precision == "bf16":
        reason = bf16_unsupported()
        if reason:
            print(f"note: {prefix}: serving fp32, not bf16: {reason}", file=sys.stderr)
            precision = "fp32"
    if precision == "int8" and not Path(f"{prefix}.int8.onnx").is_file():
        raise CheckpointError(f"no int8 program at {prefix}.int8.onnx (export with --precision int8)")
    if precision == "int8":
        _note_int8_weights(prefix)
    if backend == "auto":
        backend = needs or (fastest_backend() if Path(f"{prefix}.onnx").is_file() else "paddle")
    return precision, backend


def _note_int8_weights(prefix: str) -> None:
    record = read_record(prefix)
    if record and record.check.get("weight_bits") == 8 and not vnni():
        print(f"note: {prefix}: its int8 weights use 8 bits (quantized on a CPU with VNNI); this CPU has none, "
              "and its 8-bit products may overflow: export with --precision int8 on this kind of CPU",
              file=sys.stderr)


def paddle_device(device: str) -> str:
    """`gpu` or `cpu`: where `paddle.inference` runs for `device` (auto: a card when this build has CUDA and
    sees one); `gpu` without a card is one error."""
    cards = cuda_cards()
    if device == "gpu" and not cards:
        raise PipelineError("device gpu: this Paddle build sees no CUDA card (install paddlepaddle-gpu and check "
                            "CUDA_VISIBLE_DEVICES), or use --device cpu")
    return "gpu" if cards and device != "cpu" else "cpu"


def cuda_cards() -> int:
    """How many CUDA cards this Paddle build can run on (0 on the CPU wheel)."""
    if not paddle.is_compiled_with_cuda():
        return 0
    return paddle.device.cuda.device_count()


def onnx_providers(device: str) -> tuple[list[str], str]:
    """(ONNX Runtime's execution providers, `gpu` or `cpu`) for `device`: the CUDA provider (onnxruntime-gpu)
    first when it is installed and `device` allows it; `gpu` without it is one error."""
    import onnxruntime

    cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    if device == "gpu" and not cuda:
        raise PipelineError("device gpu: ONNX Runtime has no CUDA provider here (pip install onnxruntime-gpu in "
                            "place of onnxruntime), or use --device cpu")
    if cuda and device != "cpu":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"], "gpu"
    return ["CPUExecutionProvider"], "cpu"


def _onnx_session(program: str, threads: int, device: str):
    try:
        import onnxruntime
    except ImportError:
        raise PipelineError(f"the onnxruntime backend needs onnxruntime: {_ONNX_EXTRA}") from None
    if not Path(program).is_file():
        raise CheckpointError(f"no ONNX program at {program} (export with --onnx, or train with "
                              "train.export_onnx=true)")
    providers, device = onnx_providers(device)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its shape-merging notices about converted loops are harmless
    return onnxruntime.InferenceSession(program, options, providers=providers), device


def lower_precision(prefix: str | Path, precision: str, measure: Callable, floor: AccuracyFloor,
                    threads: int = 2, fp32_is: str = "") -> PrecisionRecord | None:
    """Makes the fp32 export at `prefix` serve `precision` (`engine.precision`), measured first.

    `measure(reference, candidate)` runs the check set through both programs
    (fp32 `paddle.inference`, and the candidate; each has `run`) and returns
    what it measured: `outputs` (an `OutputCheck.summary()`) and, where the
    task has them, `agreement` (share of predictions unchanged) and metric
    differences. Below `floor` it is one `PrecisionError` and the export
    stays fp32; otherwise the record is written (`PREFIX.precision.json`)
    and returned. fp32 removes an earlier export's lower precision.
    """
    prefix = str(prefix)
    remove_lowered(prefix)
    if precision == "fp32":
        return None
    check_precision(precision)
    if precision == "int8":
        if not Path(f"{prefix}.onnx").is_file():
            export_onnx(prefix)
        file = quantize_int8(prefix).name
    else:
        file = Path(f"{prefix}.json").name
    try:
        reference = InferenceProgram(prefix, threads, backend="paddle", device="cpu", precision="fp32")
        candidate = InferenceProgram(prefix, threads, device="cpu", precision=precision)
        measured = measure(reference, candidate)
        judge(precision, measured, floor, fp32_is=fp32_is or f"{prefix}.json serves fp32")
    except BaseException:
        remove_lowered(prefix)
        raise
    if precision == "int8":
        measured["weight_bits"] = 8 if vnni() else 7  # `quantize_int8`: what a CPU without VNNI can serve
    record = PrecisionRecord(precision, file, measured)
    write_record(prefix, record)
    return record


def run_in_batches(run: Callable[[dict], dict], arrays: dict[str, np.ndarray], batch_size: int) -> dict:
    """`run(feed) → {name: array}` over row slices of `arrays` (equal lengths), outputs concatenated by name."""
    rows = len(next(iter(arrays.values())))
    parts = [run({k: v[i:i + batch_size] for k, v in arrays.items()}) for i in range(0, rows, batch_size)]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
