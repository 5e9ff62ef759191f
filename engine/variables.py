"""Variables on disk: one file per variable, in Paddle's tensor format.

A directory holds one file per variable, named after it: what
`paddle.static.save_vars`/`load_vars` use and what the fluid ELMo release
shipped, so checkpoints load by name into any user program. The format is
read and written here with numpy, so converters and checkpoints work without
an executor, shapes are checked before anything is loaded (a bad directory
changes nothing in the scope and yields one message naming the variable and
both shapes), and a truncated file is reported instead of crashing.

Tensor file layout (little endian): uint32 version (0), uint64 LoD level
count, for each level uint64 byte size + data, uint32 tensor version (0),
int32 size of a `VarType.TensorDesc` protobuf, that protobuf (field 1: data
type enum, field 2: repeated int64 dims), then the raw row-major data.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from engine.errors import CheckpointError, listing

# -- scope <-> directory ----------------------------------------------------------
# (Paddle is imported where a scope is needed: the file format works without it.)


def persistable_shapes(program) -> dict[str, tuple[int, ...]]:
    """Name → shape of every persistable variable (parameters and optimizer state)."""
    return {v.name: tuple(v.shape) for v in program.list_vars() if v.persistable}


def get_value(name: str, scope=None) -> np.ndarray:
    import paddle

    var = (scope or paddle.static.global_scope()).find_var(name)
    if var is None:
        raise CheckpointError(f"variable '{name}' is not in the scope (was the startup program run?)")
    return np.array(var.get_tensor())


def set_value(name: str, value: np.ndarray, place, scope=None) -> None:
    """Sets a variable, creating it when no startup program made it (loading into a bare scope)."""
    import paddle

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
        raise CheckpointError(f"{directory}: missing variable file(s): {listing(missing)}")
    if not allow_extra:
        extra = [p.name for p in sorted(directory.iterdir()) if p.name not in expected and _is_tensor_file(p)]
        if extra:
            raise CheckpointError(f"{directory}: variable file(s) the program does not have: {listing(extra)} "
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


# -- the tensor file format ----------------------------------------------------------
# VarType.Type enum values of the TensorDesc proto.
_DTYPE_TO_ENUM = {
    np.dtype(np.bool_): 0,
    np.dtype(np.int16): 1,
    np.dtype(np.int32): 2,
    np.dtype(np.int64): 3,
    np.dtype(np.float16): 4,
    np.dtype(np.float32): 5,
    np.dtype(np.float64): 6,
    np.dtype(np.uint8): 20,
    np.dtype(np.int8): 21,
}
ENUM_TO_DTYPE = {v: k for k, v in _DTYPE_TO_ENUM.items()}


def write_tensor(path: str | Path, array: np.ndarray) -> None:
    """Writes `array` to `path` (durability is the caller's: see `engine.atomic`)."""
    array = np.asarray(array, order="C")  # (ascontiguousarray would turn a scalar into [1])
    if array.dtype not in _DTYPE_TO_ENUM:
        raise TypeError(f"cannot store dtype {array.dtype} in a tensor file")
    desc = _encode_desc(_DTYPE_TO_ENUM[array.dtype], array.shape)
    with open(path, "wb") as f:
        f.write(struct.pack("<IQ", 0, 0))
        f.write(struct.pack("<Ii", 0, len(desc)))
        f.write(desc)
        f.write(array.tobytes())


def read_tensor_header(path: str | Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """Returns (dtype, shape, data offset) without reading the data."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12:
            raise CheckpointError(f"{path}: truncated tensor file (no header)")
        version, lod_levels = struct.unpack("<IQ", head)
        if version != 0 or lod_levels > 16:
            raise CheckpointError(f"{path}: not a Paddle tensor file")
        for _ in range(lod_levels):
            (size,) = struct.unpack("<Q", read_exact(f, 8, path))
            f.seek(size, os.SEEK_CUR)
        _tensor_version, desc_size = struct.unpack("<Ii", read_exact(f, 8, path))
        if not 0 < desc_size < 4096:
            raise CheckpointError(f"{path}: not a Paddle tensor file (bad descriptor size)")
        dtype_enum, shape = decode_desc(read_exact(f, desc_size, path), path)
        offset = f.tell()
    if dtype_enum not in ENUM_TO_DTYPE:
        raise CheckpointError(f"{path}: unsupported data type {dtype_enum}")
    return ENUM_TO_DTYPE[dtype_enum], shape, offset


def read_tensor(path: str | Path) -> np.ndarray:
    """Reads a tensor file; a file shorter or longer than its header says is an error."""
    dtype, shape, offset = read_tensor_header(path)
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = os.path.getsize(path) - offset
    if actual != expected:
        raise CheckpointError(
            f"{path}: truncated or corrupt tensor file: header says shape {list(shape)} "
            f"({expected} bytes of data) but the file holds {actual}"
        )
    data = np.fromfile(path, dtype=dtype, count=int(np.prod(shape, dtype=np.int64)), offset=offset)
    return data.reshape(shape)


def read_exact(f, n: int, path) -> bytes:
    """`n` bytes of an open tensor file; fewer is a CheckpointError naming `path`."""
    data = f.read(n)
    if len(data) != n:
        raise CheckpointError(f"{path}: truncated tensor file (header cut short)")
    return data


def _encode_desc(dtype_enum: int, shape: tuple[int, ...]) -> bytes:
    out = bytearray([0x08]) + _varint(dtype_enum)
    for dim in shape:
        out += bytes([0x10]) + _varint(dim)
    return bytes(out)


def decode_desc(buf: bytes, path) -> tuple[int, tuple[int, ...]]:
    """(dtype enum, shape) of a tensor file's protobuf `TensorDesc`."""
    pos, dtype_enum, dims = 0, None, []
    while pos < len(buf):
        tag, pos = _read_varint(buf, pos, path)
        field, wire = tag >> 3, tag & 7
        if field == 1 and wire == 0:
            dtype_enum, pos = _read_varint(buf, pos, path)
        elif field == 2 and wire == 0:
            dim, pos = _read_varint(buf, pos, path)
            dims.append(dim - (1 << 64) if dim >= 1 << 63 else dim)
        elif field == 2 and wire == 2:  # packed encoding, accepted for robustness
            size, pos = _read_varint(buf, pos, path)
            end = pos + size
            while pos < end:
                dim, pos = _read_varint(buf, pos, path)
                dims.append(dim)
        else:
            raise CheckpointError(f"{path}: not a Paddle tensor file (unexpected descriptor field)")
    if dtype_enum is None:
        raise CheckpointError(f"{path}: not a Paddle tensor file (no data type)")
    return dtype_enum, tuple(dims)


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(buf: bytes, pos: int, path) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise CheckpointError(f"{path}: not a Paddle tensor file (bad descriptor)")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos
