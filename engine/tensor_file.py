"""One variable per file, in Paddle's LoDTensor serialization.

This is the format `paddle.static.save_vars` writes and `load_vars` reads (and
what the fluid ELMo release shipped), so checkpoints stay loadable by name
from any user program. Reading and writing it with numpy lets the converters
and the checkpoint code work without an executor, check shapes before
anything is loaded, and report a truncated file instead of crashing.

Layout (little endian): uint32 version (0), uint64 LoD level count, for each
level uint64 byte size + data, uint32 tensor version (0), int32 size of a
`VarType.TensorDesc` protobuf, that protobuf (field 1: data type enum,
field 2: repeated int64 dims), then the raw row-major data.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from engine.errors import CheckpointError

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
_ENUM_TO_DTYPE = {v: k for k, v in _DTYPE_TO_ENUM.items()}


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
            (size,) = struct.unpack("<Q", _read_exact(f, 8, path))
            f.seek(size, os.SEEK_CUR)
        _tensor_version, desc_size = struct.unpack("<Ii", _read_exact(f, 8, path))
        if not 0 < desc_size < 4096:
            raise CheckpointError(f"{path}: not a Paddle tensor file (bad descriptor size)")
        dtype_enum, shape = _decode_desc(_read_exact(f, desc_size, path), path)
        offset = f.tell()
    if dtype_enum not in _ENUM_TO_DTYPE:
        raise CheckpointError(f"{path}: unsupported data type {dtype_enum}")
    return _ENUM_TO_DTYPE[dtype_enum], shape, offset


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


def _read_exact(f, n: int, path) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise CheckpointError(f"{path}: truncated tensor file (header cut short)")
    return data


def _encode_desc(dtype_enum: int, shape: tuple[int, ...]) -> bytes:
    out = bytearray([0x08]) + _varint(dtype_enum)
    for dim in shape:
        out += bytes([0x10]) + _varint(dim)
    return bytes(out)


def _decode_desc(buf: bytes, path) -> tuple[int, tuple[int, ...]]:
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
