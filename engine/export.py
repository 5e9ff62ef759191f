"""Inference programs: `save_inference_model` with named outputs.

In PIR, `save_inference_model` names the outputs `fetch_name_0`, … unless a
value already carries a name (only feeds, parameters and shadow outputs do).
Predictors are easier to use with meaningful names, so the saved program's
fetch ops are renamed afterwards (their `name` attribute is all that
`paddle.inference` reads).
"""

from __future__ import annotations

import json
from pathlib import Path

import paddle


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
