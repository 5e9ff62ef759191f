"""The bilm-tf / AllenNLP ELMo format, and its mapping to our variables.

A bilm-tf model is `options.json` + `weights.hdf5` (TF variable names) + a
token-embedding HDF5 (dataset `embedding`, one row per vocabulary line). Its
LSTM cell is TF's `LSTMCell` with a projection:

    z = [x, h_prev] · W_0 + B          gate blocks [i | j | f | o], j the candidate
    c = σ(f + 1.0)·c_prev + σ(i)·tanh(j)   (forget_bias 1.0 is not stored in B)

Ours splits W_0 into the input projection (first `in_dim` rows) and the
recurrent weight (the rest), orders the gate blocks [j | i | f | o], and keeps
TF's forget-gate constant in `BiLMConfig.forget_bias` instead of folding it
into the bias, so converting back and forth is exact. Nothing here imports
Paddle: conversion is array work.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from bilm.config import BiLMConfig
from bilm.params import EMBEDDING, layer_names
from engine.errors import CheckpointError, ConfigError

DIRECTION_INDEX = {"fw": 0, "bw": 1}
# Datasets of the character encoder: reported as unused by a word-level import.
CHAR_CNN_PREFIXES = ("char_embed", "CNN/", "CNN_high_", "CNN_proj/")
TF_FORGET_BIAS = 1.0


def lstm_dataset(direction: str, layer: int, what: str) -> str:
    """`RNN_{d}/RNN/MultiRNNCell/Cell{l}/LSTMCell/{W_0|B|W_P_0}`."""
    return f"RNN_{DIRECTION_INDEX[direction]}/RNN/MultiRNNCell/Cell{layer}/LSTMCell/{what}"


def tf_shapes(cfg: BiLMConfig) -> dict[str, tuple[int, ...]]:
    """Every LSTM dataset of a bilm-tf `weights.hdf5` for this architecture."""
    H, P = cfg.hidden_size, cfg.embed_size
    shapes = {}
    for d in DIRECTION_INDEX:
        for layer in range(cfg.num_layers):
            shapes[lstm_dataset(d, layer, "W_0")] = (P + P, 4 * H)
            shapes[lstm_dataset(d, layer, "B")] = (4 * H,)
            shapes[lstm_dataset(d, layer, "W_P_0")] = (H, P)
    return shapes


def _swap_first_blocks(array: np.ndarray) -> np.ndarray:
    """[i | j | f | o] ↔ [j | i | f | o] along the last axis (its own inverse)."""
    i, j, f, o = np.split(array, 4, axis=-1)
    return np.concatenate([j, i, f, o], axis=-1)


# -- options.json ---------------------------------------------------------------


def read_options(path: str | Path, vocab_size: int) -> BiLMConfig:
    """The architecture in a bilm-tf `options.json`, as a `BiLMConfig`."""
    try:
        options = json.loads(Path(path).read_text())
        lstm = options["lstm"]
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ConfigError(f"{path}: not a bilm-tf options file (no 'lstm' section)") from None

    def number(key, kind, default=None):
        value = lstm.get(key, default)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: lstm.{key} must be a number, got {value!r}")
        if kind is int and value != int(value):
            raise ConfigError(f"{path}: lstm.{key} must be an integer, got {value!r}")
        return kind(value)

    n_tokens = options.get("n_tokens_vocab")
    if n_tokens is not None and n_tokens != vocab_size:
        raise ConfigError(f"{path}: n_tokens_vocab is {n_tokens} but the vocabulary has {vocab_size} entries")
    try:
        return BiLMConfig(
            vocab_size=vocab_size,
            embed_size=number("projection_dim", int),
            hidden_size=number("dim", int),
            num_layers=number("n_layers", int),
            cell_clip=number("cell_clip", float, 0.0) or 0.0,
            proj_clip=number("proj_clip", float, 0.0) or 0.0,
            use_skip_connections=bool(lstm.get("use_skip_connections", False)),
            forget_bias=TF_FORGET_BIAS,
            dropout=0.0,
            softmax="full",
        )
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def write_options(path: str | Path, cfg: BiLMConfig) -> None:
    options = {
        "lstm": {"dim": cfg.hidden_size, "projection_dim": cfg.embed_size, "n_layers": cfg.num_layers,
                 "cell_clip": cfg.cell_clip, "proj_clip": cfg.proj_clip,
                 "use_skip_connections": cfg.use_skip_connections},
        "n_tokens_vocab": cfg.vocab_size,
    }
    Path(path).write_text(json.dumps(options, indent=2) + "\n")


# -- weights.hdf5 ---------------------------------------------------------------


def read_weights(path: str | Path, cfg: BiLMConfig) -> tuple[dict[str, np.ndarray], list[str]]:
    """(LSTM datasets checked against `cfg`, names of the character-encoder datasets)."""
    expected = tf_shapes(cfg)
    arrays, char_cnn = {}, []
    with _datasets(path) as datasets:
        for name, dataset in datasets.items():
            if name in expected:
                if dataset.shape != expected[name]:
                    raise CheckpointError(
                        f"{path}: {name} has shape {list(dataset.shape)} but options.json (dim "
                        f"{cfg.hidden_size}, projection_dim {cfg.embed_size}) implies {list(expected[name])}"
                    )
                arrays[name] = np.asarray(dataset[()], np.float32)
            elif name.startswith(CHAR_CNN_PREFIXES):
                char_cnn.append(name)
            else:
                raise CheckpointError(f"{path}: unknown dataset '{name}' (not an LSTM or character-CNN "
                                      f"variable of a {cfg.num_layers}-layer bilm-tf model)")
    missing = [n for n in expected if n not in arrays]
    if missing:
        raise CheckpointError(f"{path}: missing dataset(s) {', '.join(missing)}")
    return arrays, char_cnn


def write_weights(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    with h5py.File(path, "w") as f:
        for name, value in arrays.items():
            f.create_dataset(name, data=value)


def read_token_embeddings(path: str | Path, cfg: BiLMConfig) -> np.ndarray:
    """The `embedding` dataset, one row per vocabulary line."""
    with _datasets(path) as datasets:
        if "embedding" not in datasets:
            raise CheckpointError(f"{path}: no dataset 'embedding' (found: {', '.join(datasets) or 'none'})")
        shape = tuple(datasets["embedding"].shape)
        if shape != (cfg.vocab_size, cfg.embed_size):
            raise CheckpointError(
                f"{path}: 'embedding' has shape {list(shape)} but the vocabulary has {cfg.vocab_size} "
                f"entries and projection_dim is {cfg.embed_size}"
            )
        return np.asarray(datasets["embedding"][()], np.float32)


def write_token_embeddings(path: str | Path, embedding: np.ndarray) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("embedding", data=embedding)


@contextmanager
def _datasets(path: str | Path) -> Iterator[dict]:
    """Every dataset of an HDF5 file by its full path, while the file is open."""
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except OSError:
        raise CheckpointError(f"{path}: not an HDF5 file") from None
    with f:
        found = {}
        f.visititems(lambda name, obj: found.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
        yield found


# -- mapping ------------------------------------------------------------------------


def to_ours(tf: dict[str, np.ndarray], embedding: np.ndarray, cfg: BiLMConfig) -> dict[str, np.ndarray]:
    """Our variables (fluid names) from bilm-tf datasets."""
    P = cfg.embed_size
    ours = {EMBEDDING: embedding}
    for d in DIRECTION_INDEX:
        for layer in range(cfg.num_layers):
            names = layer_names(cfg, d, layer)
            w0 = _swap_first_blocks(tf[lstm_dataset(d, layer, "W_0")])
            ours[names["gate_w"]] = w0[:P]
            ours[names["weight"]] = w0[P:]
            ours[names["bias"]] = _swap_first_blocks(tf[lstm_dataset(d, layer, "B")])[None, :]
            ours[names["proj"]] = tf[lstm_dataset(d, layer, "W_P_0")]
    return ours


def to_tf(ours: dict[str, np.ndarray], cfg: BiLMConfig) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(bilm-tf datasets, token embedding) from our variables.

    TF's cell adds 1.0 to the forget gate; a model trained here has
    `forget_bias` 0, so 1.0 is taken out of its stored forget-gate bias.
    """
    H = cfg.hidden_size
    shift = np.float64(cfg.forget_bias) - TF_FORGET_BIAS
    tf = {}
    for d in DIRECTION_INDEX:
        for layer in range(cfg.num_layers):
            names = layer_names(cfg, d, layer)
            w0 = np.concatenate([ours[names["gate_w"]], ours[names["weight"]]], axis=0)
            tf[lstm_dataset(d, layer, "W_0")] = _swap_first_blocks(w0)
            bias = ours[names["bias"]].reshape(-1)
            if shift:
                bias = bias.astype(np.float64)
                bias[2 * H:3 * H] += shift
                bias = bias.astype(np.float32)
            tf[lstm_dataset(d, layer, "B")] = _swap_first_blocks(bias)
            tf[lstm_dataset(d, layer, "W_P_0")] = ours[names["proj"]]
    return tf, ours[EMBEDDING]
