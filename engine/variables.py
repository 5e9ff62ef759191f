"""Moving variables between a scope and a directory of tensor files.

A directory holds one file per variable, named after it, which is what
`paddle.static.save_vars`/`load_vars` use and what the fluid ELMo release
shipped. Loading checks every expected file and shape first, so a bad
directory changes nothing in the scope and yields one message naming the
variable (and both shapes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import paddle

from engine.errors import CheckpointError
from engine.tensor_file import read_tensor, read_tensor_header, write_tensor


def persistable_shapes(program) -> dict[str, tuple[int, ...]]:
    """Name → shape of every persistable variable (parameters and optimizer state)."""
    return {v.name: tuple(v.shape) for v in program.list_vars() if v.persistable}


def get_value(name: str, scope=None) -> np.ndarray:
    var = (scope or paddle.static.global_scope()).find_var(name)
    if var is None:
        raise CheckpointError(f"variable '{name}' is not in the scope (was the startup program run?)")
    return np.array(var.get_tensor())


def set_value(name: str, value: np.ndarray, place, scope=None) -> None:
    """Sets a variable, creating it when no startup program made it (loading into a bare scope)."""
    scope = scope or paddle.static.global_scope()
    var = scope.find_var(name) or scope.var(name)
    var.get_tensor().set(np.asarray(value, order="C"), place)


def save_variables(directory: str | Path, names, scope=None) -> None:
    """Writes each named scope variable to `directory/name`."""
    for name in names:
        write_tensor(Path(directory, name), get_value(name, scope))


def check_directory(directory: str | Path, expected: dict[str, tuple[int, ...]],
                    allow_missing: bool = False, allow_extra: bool = True) -> dict[str, Path]:
    """Maps expected variable names to their files; missing files or wrong shapes are errors.

    With `allow_extra` (the default) tensor files that are not expected are
    ignored: a pretraining checkpoint loaded into a downstream program has
    more variables than it needs. Resuming a run is strict: an extra variable
    means the checkpoint was written by another program.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such directory")
    found, missing = {}, []
    for name, shape in expected.items():
        path = directory / name
        if not path.is_file():
            missing.append(name)
            continue
        _, file_shape, _ = read_tensor_header(path)
        if tuple(file_shape) != tuple(shape) and not _same_size_scalar(file_shape, shape):
            raise CheckpointError(
                f"{path}: variable '{name}' has shape {list(file_shape)} in the file "
                f"but {list(shape)} in the program"
            )
        found[name] = path
    if missing and not allow_missing:
        raise CheckpointError(f"{directory}: missing variable file(s): {_listing(missing)}")
    if not allow_extra:
        extra = [p.name for p in sorted(directory.iterdir()) if p.name not in expected and _is_tensor_file(p)]
        if extra:
            raise CheckpointError(f"{directory}: variable file(s) the program does not have: {_listing(extra)} "
                                  "(was it written by another model or optimizer?)")
    return found


def load_variables(directory: str | Path, expected: dict[str, tuple[int, ...]], place,
                   scope=None, allow_missing: bool = False, allow_extra: bool = True) -> list[str]:
    """Loads the expected variables into the scope (all checked before any is set)."""
    files = check_directory(directory, expected, allow_missing, allow_extra)
    values = {name: read_tensor(path) for name, path in files.items()}
    for name, value in values.items():
        set_value(name, value.reshape(expected[name]), place, scope)
    return sorted(values)


def _listing(names: list[str]) -> str:
    return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def _is_tensor_file(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        read_tensor_header(path)
        return True
    except CheckpointError:
        return False


def _same_size_scalar(a, b) -> bool:
    # Scalars ([] vs [1]) are stored either way by different Paddle versions.
    return int(np.prod(a)) == int(np.prod(b)) == 1
