"""Serving at lower precision, measured against fp32 before anything serves it.

An export's precision is a choice of runtime and file beside its fp32 program
(`PREFIX.json` + `.pdiparams`):

- `int8`: `PREFIX.int8.onnx`, the ONNX export with ONNX Runtime's dynamic
  quantization: every product with a constant weight becomes an 8-bit one
  (per output channel), activations are quantized per run. Measured on a
  luke-base encoder it beat static QDQ with calibration in both speed and
  accuracy (docs/benchmarks.md), so static quantization is not offered.
- `bf16`: the fp32 program, run by `paddle.inference` with oneDNN's bfloat16
  pass, only where the CPU has bf16 instructions (AVX512-BF16 or AMX).
  Paddle 3.3.1's own int8 paths do nothing for these programs (its oneDNN
  int8 pass needs scales a PIR program cannot carry; its post-training
  quantizers refuse PIR programs), and ONNX Runtime has no bf16 CPU kernels.

`PREFIX.precision.json` records the choice and how the export measured it on
a check set (`OutputCheck`), so every reader of the export runs the right file
without being told (`engine.inference.InferenceProgram`). A check below the
floor (`AccuracyFloor`) is one error, and the low-precision file is removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.atomic import atomic_file
from engine.errors import ConfigError

PRECISIONS = ("fp32", "int8", "bf16")
RECORD_SUFFIX = ".precision.json"
# The runtime each precision runs in.
BACKEND_OF = {"int8": "onnxruntime", "bf16": "paddle"}


class PrecisionError(ConfigError):
    """A lower-precision export that lost more than its floor allows, or that this machine cannot run."""


@dataclass(frozen=True)
class AccuracyFloor:
    """What a lower-precision export must keep against fp32 on its check set."""

    agreement: float = 0.99  # share of top labels (or whole predictions) that stay the same
    cosine: float = 0.99  # mean cosine similarity of each output's vectors (ELMo's layers)


@dataclass
class PrecisionRecord:
    """`PREFIX.precision.json`: which precision the export serves, from which file, and what it measured."""

    precision: str
    file: str  # the program file it runs, beside the prefix
    check: dict = field(default_factory=dict)  # measured against fp32 (`OutputCheck.summary` and task metrics)


def record_path(prefix: str | Path) -> Path:
    return Path(f"{prefix}{RECORD_SUFFIX}")


def read_record(prefix: str | Path) -> PrecisionRecord | None:
    """The export's precision record, or None for a plain fp32 export."""
    path = record_path(prefix)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        record = PrecisionRecord(data["precision"], data["file"], data.get("check", {}))
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: not a precision record ({e})") from None
    if record.precision not in PRECISIONS:
        raise ConfigError(f"{path}: precision must be one of {', '.join(PRECISIONS)}, got {record.precision!r}")
    return record


def write_record(prefix: str | Path, record: PrecisionRecord) -> Path:
    path = record_path(prefix)
    with atomic_file(path) as tmp:
        Path(tmp).write_text(json.dumps(asdict(record), indent=1))
    return path


def check_precision(precision: str, what: str = "--precision") -> str:
    """`precision` if known and runnable here, else one error naming `what` and why."""
    if precision not in PRECISIONS:
        raise ConfigError(f"{what}: must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16":
        reason = bf16_unsupported()
        if reason:
            raise PrecisionError(f"{what} bf16: {reason}; use int8 (ONNX Runtime) or fp32")
    return precision


def cpu_flags() -> set[str]:
    """The CPU's instruction-set flags (Linux's /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def isa_summary() -> str:
    """The flags that decide low-precision speed, for benchmark tables."""
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    have = cpu_flags()
    return " ".join(flag for flag in wanted if flag in have) or "none of avx2/avx512/vnni/bf16/amx"


def bf16_unsupported() -> str | None:
    """Why bf16 cannot run fast here (None: it can): oneDNN's own test of the CPU, as Paddle runs it."""
    from paddle.base import core

    if not core.supports_bfloat16():
        return "this CPU has no bf16 support in oneDNN (it needs AVX-512)"
    if not core.supports_bfloat16_fast_performance():
        return "this CPU has no bf16 instructions (AVX512-BF16 or AMX); oneDNN would emulate them, slower than fp32"
    return None


def quantize_int8(prefix: str | Path) -> Path:
    """Writes `PREFIX.int8.onnx` from `PREFIX.onnx` (the folded export of `engine.inference.export_onnx`):
    ONNX Runtime's dynamic quantization of every MatMul with a constant weight, int8 per output channel
    where the weight is a matrix and per tensor where it is a stack of them (LUKE's per-head
    words-to-entities weight) or inside a loop (ELMo's any-length recurrence); products of two
    activations (attention scores) stay fp32. Returns its path.

    On a CPU without VNNI the weights use 7 of their 8 bits (`reduce_range`): ONNX Runtime's AVX2
    product adds pairs of uint8 × int8 products in 16 bits, which full-range weights overflow (a tiny
    biLM's layer cosine 0.993 against 0.99996 on an AVX2-only EPYC)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise PrecisionError("int8 export needs ONNX Runtime's quantizer: pip install paddle2onnx==2.1.0 onnxruntime "
                             "(the project's [onnx] extra)") from None
    source, output = Path(f"{prefix}.onnx"), Path(f"{prefix}.int8.onnx")
    external = Path(f"{source}.data").is_file()
    matrices = _matrix_products(source)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    try:
        staged = tmp / output.name
        # One pass per scale layout (the quantizer takes one per call): stacks (and the products inside
        # a loop's body) per tensor, then the top-level matrices per channel.
        passes = [(False, {"nodes_to_exclude": matrices}, True), (True, {"nodes_to_quantize": matrices}, False)]
        if not matrices:
            passes = passes[:1]
        current = source
        for i, (per_channel, nodes, subgraphs) in enumerate(passes):
            written = staged if i == len(passes) - 1 else tmp / f"pass-{i}.onnx"
            with _quiet_logging():  # the quantizer logs a line per tensor it leaves alone
                quantize_dynamic(current, written, weight_type=QuantType.QInt8, per_channel=per_channel,
                                 reduce_range=not vnni(), op_types_to_quantize=["MatMul", "Gemm"],
                                 use_external_data_format=external, **nodes,
                                 extra_options={"MatMulConstBOnly": True, "EnableSubgraph": subgraphs})
            current = written
        if Path(f"{staged}.data").is_file():
            os.replace(f"{staged}.data", f"{output}.data")
        os.replace(staged, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output


def vnni() -> bool:
    """Whether the CPU has 8-bit dot-product instructions (AVX-512 VNNI, AVX-VNNI or AMX)."""
    return bool(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def _matrix_products(path: Path) -> list[str]:
    """The top-level MatMul and Gemm nodes whose constant weight is a matrix: ONNX Runtime's int8 product
    takes per-channel scales only for those."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    ranks = {t.name: len(t.dims) for t in model.graph.initializer}
    return [node.name for node in model.graph.node
            if node.op_type in ("MatMul", "Gemm") and ranks.get(node.input[1]) == 2 and node.name]


@contextlib.contextmanager
def _quiet_logging():
    saved = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(saved)


def remove_lowered(prefix: str | Path) -> None:
    """Removes an export's lower-precision file and record (back to a plain fp32 export)."""
    for path in (record_path(prefix), Path(f"{prefix}.int8.onnx"), Path(f"{prefix}.int8.onnx.data")):
        path.unlink(missing_ok=True)


def add_precision_arguments(parser, check_help: str) -> None:
    """An export command's `--precision`, `--check-text`, `--min-agreement` and `--min-cosine`."""
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="also serve at int8 (ONNX Runtime) or bf16 (oneDNN, where the CPU has it), measured "
                             "against fp32 on --check-text first")
    parser.add_argument("--check-text", metavar="FILE", help=check_help)
    floor = AccuracyFloor()
    parser.add_argument("--min-agreement", type=float, default=floor.agreement,
                        help="refuse the lower precision when fewer predictions than this share stay the same")
    parser.add_argument("--min-cosine", type=float, default=floor.cosine,
                        help="refuse it when an output's mean cosine to fp32 is lower")


def precision_options(parser, args) -> AccuracyFloor:
    """The floor of parsed `add_precision_arguments` options; a lower precision without a check set, or a
    bf16 this CPU cannot run, is a parser error."""
    if args.precision != "fp32":
        if not args.check_text:
            parser.error(f"--precision {args.precision} is measured before it serves: give --check-text FILE")
        try:
            check_precision(args.precision)
        except PrecisionError as e:
            parser.error(str(e))
    return AccuracyFloor(args.min_agreement, args.min_cosine)


# -- measuring -----------------------------------------------------------------------


class OutputCheck:
    """Accumulates how far a candidate program's outputs are from the fp32 program's, output by output.

    Per output: the largest |Δ|, the mean cosine similarity of the vectors
    along the last axis (rows of zeros, padding, are left out), and the share
    of rows whose arg-max along the last axis agrees (the top label of a
    logits output).
    """

    def __init__(self):
        self._stats: dict[str, dict] = {}

    def add(self, reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]) -> None:
        for name, want in reference.items():
            got = candidate[name]
            if not np.issubdtype(want.dtype, np.floating) or want.size == 0:
                continue
            want, got = _rows(want), _rows(got)
            s = self._stats.setdefault(name, {"max_abs": 0.0, "cosines": [], "agree": 0, "rows": 0})
            s["max_abs"] = max(s["max_abs"], float(np.abs(want - got).max()))
            norms = np.linalg.norm(want, axis=-1) * np.linalg.norm(got, axis=-1)
            real = norms > 0
            s["cosines"].append((want * got).sum(-1)[real] / norms[real])
            s["agree"] += int((want.argmax(-1) == got.argmax(-1)).sum())
            s["rows"] += len(want)

    def summary(self) -> dict[str, dict[str, float]]:
        """{output: {max_abs, cosine, top_agreement, rows}}."""
        out = {}
        for name, s in self._stats.items():
            cosines = np.concatenate(s["cosines"]) if s["cosines"] else np.ones(1)
            out[name] = {"max_abs": s["max_abs"], "cosine": float(cosines.mean()) if cosines.size else 1.0,
                         "top_agreement": s["agree"] / max(s["rows"], 1), "rows": s["rows"]}
        return out


def _rows(value: np.ndarray) -> np.ndarray:
    """`value` as rows of its last axis (a scalar: one row of one)."""
    return value.reshape(-1, value.shape[-1]) if value.ndim else value.reshape(1, 1)


class ComparingProgram:
    """Runs a candidate program and the fp32 one on the same feeds, records the difference in an
    `OutputCheck`, and returns the candidate's outputs: a drop-in for the program a pipeline or a
    job's decoder runs, so the check goes through the task's own code."""

    def __init__(self, reference, candidate, check: OutputCheck):
        self.reference, self.candidate, self.check = reference, candidate, check
        self.backend = candidate.backend
        self.input_names, self.output_names = candidate.input_names, candidate.output_names

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        got = self.candidate.run(feeds)
        self.check.add(self.reference.run(feeds), got)
        return got


def judge(precision: str, measured: dict, floor: AccuracyFloor, fp32_is: str) -> None:
    """Raises one `PrecisionError` when `measured` falls below `floor`: its `agreement` (where the
    check measured one) against `floor.agreement`, each output's mean cosine against `floor.cosine`;
    `fp32_is` says what stays intact."""
    agreement = measured.get("agreement")
    if agreement is not None and agreement < floor.agreement:
        raise PrecisionError(f"the {precision} export agrees with fp32 on {agreement:.2%} of the check set, below "
                             f"the floor of {floor.agreement:.2%}; nothing {precision} was kept ({fp32_is})")
    for name, s in measured.get("outputs", {}).items():
        if s["cosine"] < floor.cosine:
            raise PrecisionError(f"the {precision} export's {name} has cosine {s['cosine']:.6f} to fp32 on the check "
                                 f"set, below the floor of {floor.cosine}; nothing {precision} was kept ({fp32_is})")


def describe(measured: dict) -> str:
    """One line of what a check measured, for the export's output."""
    parts = []
    for name, s in measured.get("outputs", {}).items():
        parts.append(f"{name} max|Δ| {s['max_abs']:.2e} cos {s['cosine']:.5f}")
    for key, value in measured.items():
        if key == "weight_bits":
            parts.append(f"weights in {value} bits")
        elif key != "outputs":
            parts.append(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}")
    return "against fp32 on the check set: " + "; ".join(parts)
