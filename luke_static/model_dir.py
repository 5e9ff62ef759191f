"""LUKE model directories: `luke_config.json`, tokenizer files, one file per encoder variable."""

from __future__ import annotations

import shutil
from pathlib import Path

import paddle

from engine.export import save_inference_program
from engine.variables import load_variables
from luke_static.config import MODEL_FILE, LukeConfig, load_luke_config
from luke_static.convert import TOKENIZER_FILES
from luke_static.model import OUTPUTS, luke_encoder, luke_feeds
from luke_static.params import variable_shapes

INFERENCE_PREFIX = "luke"


def has_pooler(directory: str | Path) -> bool:
    return Path(directory, "pooler.dense.weight").is_file()


def load_luke_variables(directory: str | Path, cfg: LukeConfig, place, with_pooler: bool | None = None) -> list[str]:
    """Loads the encoder variables of a model directory into the global scope (checked first)."""
    with_pooler = has_pooler(directory) if with_pooler is None else with_pooler
    return load_variables(directory, variable_shapes(cfg, with_pooler), place)


def export_encoder(exe, place, model_dir: str | Path, prefix: str | Path, with_entities: bool = True) -> str:
    """Saves the encoder of `model_dir` as an inference program at `prefix` (`.json` + `.pdiparams`).

    Feeds and outputs keep HF's names: `input_ids`, … `entity_position_ids`
    in; `word_last_hidden_state`, `entity_last_hidden_state` and (when the
    model has a pooler) `pooler_output` out. `with_entities=False` exports a
    word-only encoder.
    """
    cfg = load_luke_config(model_dir)
    pooler = has_pooler(model_dir)
    program = paddle.static.Program()
    with paddle.static.program_guard(program, paddle.static.Program()):
        feeds = luke_feeds(with_entities)
        out = luke_encoder(cfg, feeds, with_pooler=pooler)
    fetches = {name: value for name, value in zip(OUTPUTS, (out.word, out.entity, out.pooled)) if value is not None}
    load_luke_variables(model_dir, cfg, place, pooler)
    save_inference_program(prefix, list(feeds.values()), fetches, exe, program)
    # The tokenizer travels with the program: serving needs both.
    for name in (*TOKENIZER_FILES, MODEL_FILE):
        if Path(model_dir, name).is_file() and Path(prefix).parent != Path(model_dir):
            shutil.copy(Path(model_dir, name), Path(prefix).parent / name)
    return str(prefix)
