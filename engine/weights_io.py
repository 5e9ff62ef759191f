"""Reading published checkpoints without torch or paddle, and without executing pickles.

- `model.safetensors`: an 8-byte header size, a JSON header, raw data.
- `torch.save` files, in torch's zip format (`pytorch_model.bin`:
  `*/data.pkl` references tensor storages stored as `*/data/<key>`) or its
  legacy format (torch < 1.6: four pickles — magic number, protocol, system
  info, the object — then the storage keys' list and each storage as an int64
  element count and its bytes). The object is unpickled with an allow-list
  that only rebuilds tensors (as numpy arrays) and ordered dicts.
- `model_state.pdparams` (`paddle.save`): a pickled dict of numpy arrays,
  unpickled with an allow-list of numpy's array reconstruction.

Anything else a pickle asks for is refused with an error naming it.
"""

from __future__ import annotations

import collections
import io
import json
import pickle
import pickletools
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from engine.errors import CheckpointError

_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
                       "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
_TORCH_STORAGES = {"DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
                   "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
                   "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
                   "BFloat16Storage": "bfloat16"}


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a `.safetensors` file, by name (bfloat16 widened to float32)."""
    data = Path(path).read_bytes()
    try:
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + size])
    except (struct.error, ValueError):
        raise CheckpointError(f"{path}: not a safetensors file") from None
    base, arrays = 8 + size, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = data[base + start:base + end]
        if info["dtype"] == "BF16":
            arrays[name] = _bfloat16(np.frombuffer(raw, np.uint16)).reshape(info["shape"])
        elif info["dtype"] in _SAFETENSORS_DTYPES:
            arrays[name] = np.frombuffer(raw, _SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"]).copy()
        else:
            raise CheckpointError(f"{path}: tensor '{name}' has unsupported dtype {info['dtype']}")
    return arrays


# What a damaged file makes the zip, pickle and struct readers raise.
_DAMAGED = (zipfile.BadZipFile, zlib.error, pickle.UnpicklingError, EOFError, struct.error, ValueError, KeyError,
            IndexError, TypeError, AttributeError, OverflowError, UnicodeDecodeError, OSError, MemoryError)


def read_torch_bin(path: str | Path) -> dict[str, np.ndarray]:
    """A `torch.save` state dict (zip or legacy format) as numpy arrays, without importing or trusting
    torch code. A damaged file is one `CheckpointError` naming it."""
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        return _read_torch(path)
    except CheckpointError:
        raise
    except _DAMAGED as exc:
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise CheckpointError(f"{path}: a damaged torch checkpoint ({detail})") from None


def _read_torch(path) -> dict[str, np.ndarray]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        return _flatten(_read_legacy_torch(path), path)
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if not pickles:
            raise CheckpointError(f"{path}: no data.pkl inside (not a torch checkpoint)")
        root = pickles[0][: -len("data.pkl")]
        unpickler = _TorchUnpickler(io.BytesIO(archive.read(pickles[0])), archive, root, path)
        state = unpickler.load()
    return _flatten(state, path)


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _read_legacy_torch(path):
    with open(path, "rb") as f:
        plain = lambda: _RestrictedUnpickler(f, path).load()  # noqa: E731 - numbers, strings, dicts, lists only
        try:
            magic = plain()
        except _DAMAGED:  # any garbage: the message below says what was expected
            magic = None
        if magic != _LEGACY_MAGIC:
            raise CheckpointError(f"{path}: not a torch checkpoint (neither torch's zip format nor its "
                                  "legacy one)")
        if plain() != 1001:
            raise CheckpointError(f"{path}: a legacy torch checkpoint of an unknown protocol version")
        info = plain()
        if not isinstance(info, dict) or not info.get("little_endian", True):
            raise CheckpointError(f"{path}: a big-endian torch checkpoint is not supported")
        unpickler = _LegacyTorchUnpickler(f, path)
        state = unpickler.load()
        keys = plain()
        if not isinstance(keys, list):
            raise CheckpointError(f"{path}: a damaged legacy torch checkpoint (no storage list)")
        for key in keys:
            unpickler.fill(key, f)
    return unpickler.tensors(state)


def read_pdparams(path: str | Path) -> dict[str, np.ndarray]:
    """A `paddle.save` state dict as numpy arrays."""
    with open(path, "rb") as f:
        state = _NumpyUnpickler(f, path).load()
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a state dict")
    return {k: np.asarray(v) for k, v in state.items() if not k.startswith("StructuredToParameterName")}


def _bfloat16(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _flatten(state, path) -> dict[str, np.ndarray]:
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a state dict")
    return {k: v for k, v in state.items() if isinstance(v, np.ndarray)}


class _RestrictedUnpickler(pickle.Unpickler):
    allowed: dict = {}

    def __init__(self, file, path):
        super().__init__(file)
        self._file, self.path = file, path

    def load(self):
        """The next object in the file, once its memo indices are checked."""
        start = self._file.tell()
        _check_memo(self._file)
        self._file.seek(start)
        return super().load()

    def find_class(self, module, name):
        target = self.allowed.get((module, name))
        if target is None:
            raise CheckpointError(f"{self.path}: refusing to load {module}.{name} from a pickle "
                                  "(only tensors and arrays are read)")
        return target


def _check_memo(file) -> None:
    """Raises ValueError where the pickle stores into a memo slot past its own length: C's unpickler
    grows (and zero-fills) its memo to the index, so four damaged bytes would ask for gigabytes."""
    for count, (opcode, arg, _) in enumerate(pickletools.genops(file)):
        if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and not 0 <= arg <= count:
            raise ValueError(f"memo index {arg} at opcode {count}")


_reconstruct = getattr(np, "_core", getattr(np, "core", None)).multiarray._reconstruct


class _NumpyUnpickler(_RestrictedUnpickler):
    allowed = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }


def _rebuild_tensor(storage, offset, size, stride, *_):
    size, stride = tuple(size), tuple(stride)
    # A damaged file's numbers must not read past the storage (as_strided does not check).
    if (len(size) != len(stride) or offset < 0 or any(n < 0 for n in size) or any(k < 0 for k in stride)
            or offset + sum((n - 1) * k for n, k in zip(size, stride) if n) + 1 > len(storage) and all(size)):
        raise ValueError(f"a tensor of size {list(size)} does not fit its storage of {len(storage)}")
    if not size:
        return storage[offset:offset + 1].reshape(()).copy()
    return np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * storage.itemsize for s in stride)).copy()


def _rebuild_parameter(data, *_):
    return data


class _StorageType:
    def __init__(self, name):
        self.dtype = _TORCH_STORAGES[name]


class _TorchUnpickler(_RestrictedUnpickler):
    allowed = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("collections", "OrderedDict"): collections.OrderedDict,
        **{("torch", name): _StorageType(name) for name in _TORCH_STORAGES},
        # saved from a card (legacy format): read onto the CPU all the same
        **{("torch.cuda", name): _StorageType(name) for name in _TORCH_STORAGES},
    }

    def __init__(self, file, archive, root, path):
        super().__init__(file, path)
        self.archive, self.root, self._storages = archive, root, {}

    def persistent_load(self, pid):
        _, storage_type, key, _location, _numel = pid
        if key not in self._storages:
            raw = self.archive.read(f"{self.root}data/{key}")
            dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else np.float32
            if dtype == "bfloat16":
                self._storages[key] = _bfloat16(np.frombuffer(raw, np.uint16))
            else:
                self._storages[key] = np.frombuffer(raw, dtype)
        return self._storages[key]


class _LegacyTorchUnpickler(_TorchUnpickler):
    """The legacy format's object pickle. Its storages' bytes follow the object in the file, so tensors
    are rebuilt once every storage is read (`tensors`)."""

    def __init__(self, file, path):
        _RestrictedUnpickler.__init__(self, file, path)
        self._storages, self._sizes = {}, {}
        self.allowed = {**self.allowed, ("torch._utils", "_rebuild_tensor_v2"): _PendingTensor}

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise CheckpointError(f"{self.path}: unexpected object reference {pid!r} in a legacy torch checkpoint")
        _, storage_type, key, _location, numel, view = pid
        if view is not None:
            raise CheckpointError(f"{self.path}: storage views (torch < 0.4 checkpoints) are not supported")
        dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else np.float32
        self._sizes[key] = (numel, np.uint16 if dtype == "bfloat16" else dtype, dtype == "bfloat16")
        return key

    def fill(self, key, f) -> None:
        """Reads storage `key`, next in the file."""
        numel, dtype, bfloat16 = self._sizes[key]
        (count,) = struct.unpack("<q", f.read(8))
        raw = f.read(count * np.dtype(dtype).itemsize)
        if count != numel or len(raw) != numel * np.dtype(dtype).itemsize:
            raise CheckpointError(f"{self.path}: storage {key} is truncated or mis-sized")
        values = np.frombuffer(raw, dtype)
        self._storages[key] = _bfloat16(values) if bfloat16 else values

    def tensors(self, state):
        """`state` with each tensor rebuilt from its storage."""
        if isinstance(state, _PendingTensor):
            if state.storage not in self._storages:
                raise CheckpointError(f"{self.path}: storage {state.storage} is missing")
            return _rebuild_tensor(self._storages[state.storage], *state.layout)
        if isinstance(state, dict):
            return type(state)((k, self.tensors(v)) for k, v in state.items())
        return state


class _PendingTensor:
    def __init__(self, storage, *layout):
        self.storage, self.layout = storage, layout
