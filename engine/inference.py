"""Inference programs: saved with named outputs, run by name through `paddle.inference`.

In PIR, `save_inference_model` names the outputs `fetch_name_0`, … unless a
value already carries a name (only feeds, parameters and shadow outputs do).
Predictors are easier to use with meaningful names, so the saved program's
fetch ops are renamed afterwards (their `name` attribute is all that
`paddle.inference` reads).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import paddle

from engine.errors import CheckpointError


def save_inference_program(prefix: str | Path, feeds: list, fetches: dict, exe, program) -> str:
    """Saves `program` for `paddle.inference` with the given feeds and {name: value} outputs."""
    prefix = str(prefix)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    paddle.static.save_inference_model(prefix, feeds, list(fetches.values()), exe, program=program)
    rename_fetches(f"{prefix}.json", list(fetches))
    return prefix


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
    """Runs `PREFIX.json` + `PREFIX.pdiparams`: `run({input name: array}) → {output name: array}`."""

    def __init__(self, prefix: str | Path, threads: int = 2, onednn: bool = False):
        from paddle import inference

        prefix = str(prefix)
        if not Path(prefix + ".json").is_file():
            raise CheckpointError(f"no inference program at {prefix}.json")
        config = inference.Config(prefix + ".json", prefix + ".pdiparams")
        config.disable_glog_info()
        config.set_cpu_math_library_num_threads(threads)
        if onednn:
            config.enable_mkldnn()
        self._predictor = inference.create_predictor(config)
        self.input_names = self._predictor.get_input_names()
        self.output_names = self._predictor.get_output_names()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise KeyError(f"missing inputs: {', '.join(missing)} (the program takes {', '.join(self.input_names)})")
        for name in self.input_names:
            value = np.ascontiguousarray(feeds[name])
            handle = self._predictor.get_input_handle(name)
            handle.reshape(value.shape)
            handle.copy_from_cpu(value)
        self._predictor.run()
        return {name: self._predictor.get_output_handle(name).copy_to_cpu() for name in self.output_names}


def run_in_batches(run: Callable[[dict], dict], arrays: dict[str, np.ndarray], batch_size: int) -> dict:
    """`run(feed) → {name: array}` over row slices of `arrays` (equal lengths), outputs concatenated by name."""
    rows = len(next(iter(arrays.values())))
    parts = [run({k: v[i:i + batch_size] for k, v in arrays.items()}) for i in range(0, rows, batch_size)]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
