"""LUKE's model directories, and the HF / PaddleNLP checkpoints they are converted from.

A model directory holds `luke_config.json` (the `LukeConfig`), the tokenizer
files, and one tensor file per encoder variable under HF's names (dense
weights in Paddle's [in, out] layout).

Conversion reads `hf` (`config.json` + `model.safetensors`, or
`pytorch_model.bin` read without executing its pickle) or `paddlenlp`
(`model_config.json` or `config.json` + `model_state.pdparams`), transposes
torch's dense weights, and fills the w2e/e2w/e2e queries pretrained files lack
with copies of `query`, as HF's conversion does. Task heads (`qa_outputs`,
`classifier`, `lm_head`, …) are listed as not used.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import paddle

from engine.atomic import atomic_directory
from engine.config import from_dict, read_json, write_json
from engine.errors import CheckpointError, ConfigError, listing
from engine.inference import save_inference_program
from engine.variables import load_variables, write_tensor
from luke_static.config import LukeConfig, from_pretrained_config
from luke_static.model import OUTPUTS, QUERIES, luke_encoder, luke_feeds, variable_shapes

MODEL_FILE = "luke_config.json"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "entity_vocab.json", "entity_vocab.tsv", "entity_vocab.jsonl",
                   "special_tokens_map.json", "tokenizer_config.json", "added_tokens.json")
INFERENCE_PREFIX, LABELS_FILE = "luke", "labels.txt"
# Buffers some files carry that are not parameters.
_STALE = ("embeddings.position_ids",)
# Prefixes of task heads: not part of the encoder.
_HEADS = ("lm_head.", "entity_predictions.", "qa_outputs.", "classifier.", "cls.")


# -- model directories ------------------------------------------------------------------


def save_luke_config(cfg: LukeConfig, directory: str | Path) -> None:
    """Writes `luke_config.json` into a model directory."""
    write_json(Path(directory, MODEL_FILE), cfg)


def load_luke_config(directory: str | Path) -> LukeConfig:
    """Reads `luke_config.json` from a model directory (or an export)."""
    path = Path(directory, MODEL_FILE)
    data = read_json(path, f"{directory} is not a LUKE model directory (no {MODEL_FILE})")
    return from_dict(LukeConfig, data, source=str(path))


def copy_tokenizer(source: str | Path, directory: str | Path) -> None:
    """Copies the tokenizer files `source` has into `directory` (serving needs them beside the program)."""
    for name in TOKENIZER_FILES:
        if Path(source, name).is_file() and Path(source) != Path(directory):
            shutil.copy(Path(source, name), Path(directory, name))


def save_labels(directory: str | Path, labels: list[str]) -> None:
    """A task's label list, one per line in the classifier's order (what a predictor reads back)."""
    Path(directory, LABELS_FILE).write_text("".join(label + "\n" for label in labels), encoding="utf-8")


def load_labels(directory: str | Path) -> list[str]:
    """The label list `save_labels` wrote, in the classifier's order."""
    path = Path(directory, LABELS_FILE)
    if not path.is_file():
        raise CheckpointError(f"{directory}: no {LABELS_FILE} (is it a task's inference directory?)")
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]


def has_pooler(directory: str | Path) -> bool:
    """Whether a model directory holds the pooler (HF's task checkpoints often do not)."""
    return Path(directory, "pooler.dense.weight").is_file()


def load_luke_variables(directory: str | Path, cfg: LukeConfig, place, with_pooler: bool | None = None) -> list[str]:
    """Loads the encoder variables of a model directory into the global scope (checked first)."""
    with_pooler = has_pooler(directory) if with_pooler is None else with_pooler
    return load_variables(directory, variable_shapes(cfg, with_pooler), place)


def export_encoder(exe, place, model_dir: str | Path, prefix: str | Path, with_entities: bool = True,
                   onnx: bool = False) -> str:
    """Saves the encoder of `model_dir` as an inference program at `prefix` (`.json` + `.pdiparams`).

    Feeds and outputs keep HF's names: `input_ids`, … `entity_position_ids`
    in; `word_last_hidden_state`, `entity_last_hidden_state` and (when the
    model has a pooler) `pooler_output` out. `with_entities=False` exports a
    word-only encoder; `onnx` also writes `PREFIX.onnx` for ONNX Runtime.
    """
    cfg = load_luke_config(model_dir)
    pooler = has_pooler(model_dir)
    program = paddle.static.Program()
    with paddle.static.program_guard(program, paddle.static.Program()):
        feeds = luke_feeds(with_entities)
        out = luke_encoder(cfg, feeds, with_pooler=pooler)
    fetches = {name: value for name, value in zip(OUTPUTS, (out.word, out.entity, out.pooled)) if value is not None}
    load_luke_variables(model_dir, cfg, place, pooler)
    save_inference_program(prefix, list(feeds.values()), fetches, exe, program, onnx)
    # The tokenizer travels with the program: serving needs both.
    copy_tokenizer(model_dir, Path(prefix).parent)
    save_luke_config(cfg, Path(prefix).parent)
    return str(prefix)


# -- conversion --------------------------------------------------------------------


def is_dense_weight(name: str, shape: tuple[int, ...]) -> bool:
    """Dense-layer weights are stored transposed by torch; embedding tables are not."""
    return len(shape) == 2 and not name.endswith("embeddings.weight")


def read_source(kind: str, src: Path) -> tuple[LukeConfig, dict[str, np.ndarray]]:
    """The config and the raw named arrays of an `hf` or `paddlenlp` checkpoint directory."""
    from luke_static.weights_io import read_pdparams, read_safetensors, read_torch_bin

    if kind == "hf":
        cfg = _config(src / "config.json")
        if (src / "model.safetensors").is_file():
            return cfg, read_safetensors(src / "model.safetensors")
        if (src / "pytorch_model.bin").is_file():
            return cfg, read_torch_bin(src / "pytorch_model.bin")
        raise CheckpointError(f"{src}: no model.safetensors or pytorch_model.bin")
    config = src / "model_config.json" if (src / "model_config.json").is_file() else src / "config.json"
    # PaddleNLP's LUKE hard-codes LayerNorm eps 1e-6, whatever its config says.
    cfg = _config(config, eps=1e-6)
    if not (src / "model_state.pdparams").is_file():
        raise CheckpointError(f"{src}: no model_state.pdparams")
    return cfg, read_pdparams(src / "model_state.pdparams")


def to_ours(kind: str, source: dict[str, np.ndarray], cfg: LukeConfig) -> tuple[dict[str, np.ndarray], list[str]]:
    """(our variables, names of the source left unused); a mismatch is an error listing names."""
    expected = variable_shapes(cfg)
    renamed, unused = {}, []
    for name, value in source.items():
        ours = name.removeprefix("luke.")
        if kind == "paddlenlp":
            ours = ours.replace("layer_norm.", "LayerNorm.")
        if ours in _STALE:
            continue
        if ours.startswith(_HEADS):
            unused.append(name)
            continue
        if kind == "hf" and ours in expected and is_dense_weight(ours, expected[ours]):
            value = value.T
        renamed[ours] = np.ascontiguousarray(value, dtype=np.float32)
    _fill_entity_queries(renamed, cfg)
    if "pooler.dense.weight" not in renamed:  # HF's QA models have no pooler: keep a fresh one out
        expected = variable_shapes(cfg, with_pooler=False)
    missing = sorted(set(expected) - set(renamed))
    unexpected = sorted(set(renamed) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"parameter names do not match a {cfg.num_hidden_layers}-layer LUKE: "
                              f"missing {listing(missing, 6)}; unexpected {listing(unexpected, 6)}")
    for name, shape in expected.items():
        if renamed[name].shape != shape:
            raise CheckpointError(f"'{name}' has shape {list(renamed[name].shape)} in the checkpoint "
                                  f"but {list(shape)} in the config")
    return renamed, unused


def _fill_entity_queries(params: dict, cfg: LukeConfig) -> None:
    if not cfg.use_entity_aware_attention:
        return
    for i in range(cfg.num_hidden_layers):
        prefix = f"encoder.layer.{i}.attention.self."
        for query in QUERIES[1:]:
            for part in ("weight", "bias"):
                if f"{prefix}query.{part}" in params:
                    params.setdefault(f"{prefix}{query}.{part}", params[f"{prefix}query.{part}"].copy())


def _config(path: Path, eps: float | None = None) -> LukeConfig:
    data = read_json(path)
    if not isinstance(data, dict) or "hidden_size" not in data:
        raise ConfigError(f"{path}: not a LUKE config (no hidden_size)")
    if eps is not None:
        data = {**data, "layer_norm_eps": eps}
        data.pop("layer_norm_epsilon", None)
    return from_pretrained_config(data, str(path))


def convert(kind: str, src: str | Path, output: str | Path) -> tuple[LukeConfig, list[str]]:
    """Converts SRC into the model directory OUTPUT; returns (config, unused source names)."""
    src = Path(src)
    cfg, source = read_source(kind, src)
    params, unused = to_ours(kind, source, cfg)
    with atomic_directory(output) as tmp:
        for name, value in params.items():
            write_tensor(tmp / name, value)
        save_luke_config(cfg, tmp)
        copy_tokenizer(src, tmp)
    return cfg, unused
