"""Model directories: what pretraining writes and every ELMo tool reads.

A model directory holds `model.json` (the `BiLMConfig`), `vocab.txt`, and one
tensor file per biLM variable under its fluid name. Checkpoints are model
directories too (with optimizer state on top), so any tool that takes
`--model DIR` accepts either.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import paddle

from bilm.config import BiLMConfig, load_model_config, save_model_config
from bilm.encoder import elmo_layers
from bilm.params import SOFTMAX_WEIGHT, create_params, variable_shapes
from bilm.token_embedding import input_data
from engine.atomic import atomic_directory
from engine.errors import CheckpointError, ConfigError
from engine.export import save_inference_program
from engine.tensor_file import read_tensor, write_tensor
from engine.variables import check_directory, get_value, load_variables
from reader.vocab import Vocabulary

VOCAB_FILE = "vocab.txt"
INFERENCE_PREFIX = "elmo"

def token_feed_name(cfg: BiLMConfig) -> str:
    """The exported program's token input: `word_ids`, or `char_ids` for a character model."""
    return "char_ids" if cfg.input == "char" else "word_ids"


def write_model_files(directory: Path, cfg: BiLMConfig, vocab: Vocabulary) -> None:
    """The files that make a directory of variables a self-describing model."""
    save_model_config(cfg, directory)
    vocab.save(Path(directory, VOCAB_FILE))


def write_model_dir(directory: Path, cfg: BiLMConfig, vocab: Vocabulary, scope=None) -> Path:
    """Writes the biLM variables of the scope + config + vocabulary, atomically."""
    arrays = {name: get_value(name, scope) for name in variable_shapes(cfg, with_softmax=True)}
    return write_model_arrays(directory, cfg, vocab, arrays)


def write_model_arrays(directory: Path, cfg: BiLMConfig, vocab: Vocabulary,
                       arrays: dict[str, np.ndarray]) -> Path:
    """Writes a model directory from arrays (a model without a softmax omits its two variables)."""
    expected = variable_shapes(cfg, with_softmax=SOFTMAX_WEIGHT in arrays)
    for name, shape in expected.items():
        if tuple(arrays[name].shape) != shape:
            raise CheckpointError(f"variable '{name}' has shape {list(arrays[name].shape)}, the model needs {list(shape)}")
    with atomic_directory(directory) as tmp:
        for name in expected:
            write_tensor(tmp / name, np.asarray(arrays[name], np.float32))
        write_model_files(tmp, cfg, vocab)
    return Path(directory)


def read_model_arrays(directory: str | Path, cfg: BiLMConfig) -> dict[str, np.ndarray]:
    """The biLM variables of a model directory (with the softmax if it has one)."""
    with_softmax = Path(directory, SOFTMAX_WEIGHT).is_file()
    files = check_directory(directory, variable_shapes(cfg, with_softmax))
    return {name: read_tensor(path) for name, path in files.items()}


def read_model_dir(directory: str | Path) -> tuple[BiLMConfig, Vocabulary]:
    """The config and vocabulary of a model (or checkpoint) directory."""
    cfg = load_model_config(directory)
    vocab = Vocabulary.load(Path(directory, VOCAB_FILE))
    try:
        return cfg.with_vocab_size(len(vocab)), vocab
    except ConfigError as exc:
        raise ConfigError(f"{directory}: {exc}") from None


def load_model_variables(directory: str | Path, cfg: BiLMConfig, place, with_softmax: bool = True) -> list[str]:
    """Loads the biLM variables of a model directory into the global scope."""
    return load_variables(directory, variable_shapes(cfg, with_softmax), place)


def export_inference_model(exe, directory: Path, cfg: BiLMConfig, vocab: Vocabulary,
                           max_length: int | None = None) -> str:
    """Saves the biLM forward (tokens + lengths → all ELMo layers) for `paddle.inference`.

    Inputs: `word_ids` [B,T] int64 (vocabulary ids, no boundaries) — for a
    character model `char_ids` [B,T,C] int64 (`reader.chars.padded_char_ids`)
    — and `lengths` [B] int64. Output `elmo_layers`: [B, L+1, T, 2·P] float32 (see
    `bilm.encoder`). Any T by default (the recurrence is a while loop); with
    `max_length` the inputs are always padded to that T and the recurrence is
    unrolled, which runs faster. Returns the path prefix (`…/elmo`).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    program = paddle.static.Program()
    with paddle.static.program_guard(program, paddle.static.Program()):
        ids = input_data(token_feed_name(cfg), cfg, steps=max_length or -1)
        lengths = paddle.static.data("lengths", [-1], "int64")
        params = create_params(cfg, with_softmax=False)
        layers = elmo_layers(params, cfg, ids, lengths, vocab.bos_id, vocab.eos_id)
    prefix = save_inference_program(directory / INFERENCE_PREFIX, [ids, lengths], {"elmo_layers": layers},
                                    exe, program)
    write_model_files(directory, cfg, vocab)
    return prefix
