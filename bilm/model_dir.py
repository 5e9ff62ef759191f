"""Model directories: what pretraining writes and every ELMo tool reads.

A model directory holds `model.json` (the `BiLMConfig`), `vocab.txt`, and one
tensor file per biLM variable under its fluid name. Checkpoints are model
directories too (with optimizer state on top), so any tool that takes
`--model DIR` accepts either.
"""

from __future__ import annotations

from pathlib import Path

import paddle

from bilm.config import BiLMConfig, load_model_config, save_model_config
from bilm.encoder import elmo_layers
from bilm.params import create_params, variable_shapes
from engine.atomic import atomic_directory
from engine.errors import ConfigError
from engine.variables import load_variables, save_variables
from reader.vocab import Vocabulary

VOCAB_FILE = "vocab.txt"
INFERENCE_PREFIX = "elmo"
INFERENCE_FEEDS = ("word_ids", "lengths")


def write_model_files(directory: Path, cfg: BiLMConfig, vocab: Vocabulary) -> None:
    """The files that make a directory of variables a self-describing model."""
    save_model_config(cfg, directory)
    vocab.save(Path(directory, VOCAB_FILE))


def write_model_dir(directory: Path, cfg: BiLMConfig, vocab: Vocabulary, scope=None) -> Path:
    """Writes the biLM variables of the scope + config + vocabulary, atomically."""
    with atomic_directory(directory) as tmp:
        save_variables(tmp, variable_shapes(cfg, with_softmax=True), scope)
        write_model_files(tmp, cfg, vocab)
    return Path(directory)


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


def export_inference_model(exe, directory: Path, cfg: BiLMConfig, vocab: Vocabulary) -> str:
    """Saves the biLM forward (word ids + lengths → all ELMo layers) for `paddle.inference`.

    Inputs: `word_ids` [B,T] int64 (vocabulary ids, no boundaries), `lengths`
    [B] int64. Output: [B, L+1, T, 2·P] float32 (see `bilm.encoder`).
    Returns the path prefix (`…/elmo`, with `.json` and `.pdiparams`).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    program = paddle.static.Program()
    with paddle.static.program_guard(program, paddle.static.Program()):
        ids = paddle.static.data(INFERENCE_FEEDS[0], [-1, -1], "int64")
        lengths = paddle.static.data(INFERENCE_FEEDS[1], [-1], "int64")
        params = create_params(cfg, with_softmax=False)
        layers = elmo_layers(params, cfg, ids, lengths, vocab.bos_id, vocab.eos_id)
    prefix = str(directory / INFERENCE_PREFIX)
    paddle.static.save_inference_model(prefix, [ids, lengths], [layers], exe, program=program)
    write_model_files(directory, cfg, vocab)
    return prefix
