"""Convert a public LUKE checkpoint into a model directory of ours.

    python -m luke_static.convert --from hf SRC_DIR --output DIR
    python -m luke_static.convert --from paddlenlp SRC_DIR --output DIR

`hf`: `config.json` + `model.safetensors` (or `pytorch_model.bin`, read
without executing its pickle). `paddlenlp`: `model_config.json` (or
`config.json`) + `model_state.pdparams`. DIR gets `luke_config.json`, the tokenizer
files found in SRC_DIR, and one file per encoder variable under HF's names
(dense weights transposed to Paddle's [in, out]). Pretrained files lack the
w2e/e2w/e2e queries: they start as copies of `query`, as HF's conversion
does. Task heads (`qa_outputs`, `classifier`, `lm_head`, …) are listed as
not used.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from engine.cli import run
from engine.config import read_json
from engine.errors import CheckpointError, ConfigError
from luke_static.config import LukeConfig, from_pretrained_config
from luke_static.params import QUERIES, variable_shapes

TOKENIZER_FILES = ("vocab.json", "merges.txt", "entity_vocab.json", "entity_vocab.tsv", "entity_vocab.jsonl",
                   "special_tokens_map.json", "tokenizer_config.json", "added_tokens.json")
# Buffers some files carry that are not parameters.
_STALE = ("embeddings.position_ids",)
# Prefixes of task heads: not part of the encoder.
_HEADS = ("lm_head.", "entity_predictions.", "qa_outputs.", "classifier.", "cls.")


def is_dense_weight(name: str, shape: tuple[int, ...]) -> bool:
    """Dense-layer weights are stored transposed by torch; embedding tables are not."""
    return len(shape) == 2 and not name.endswith("embeddings.weight")


def read_source(kind: str, src: Path) -> tuple[LukeConfig, dict[str, np.ndarray]]:
    from luke_static.weights_io import read_pdparams, read_safetensors, read_torch_bin

    if kind == "hf":
        cfg = _config(src / "config.json")
        if (src / "model.safetensors").is_file():
            return cfg, read_safetensors(src / "model.safetensors")
        if (src / "pytorch_model.bin").is_file():
            return cfg, read_torch_bin(src / "pytorch_model.bin")
        raise CheckpointError(f"{src}: no model.safetensors or pytorch_model.bin")
    config = src / "model_config.json" if (src / "model_config.json").is_file() else src / "config.json"
    cfg = _config(config, default_eps=1e-6)  # PaddleNLP's LUKE hard-codes LayerNorm eps 1e-6
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
                              f"missing {_names(missing)}; unexpected {_names(unexpected)}")
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


def _config(path: Path, default_eps: float | None = None) -> LukeConfig:
    data = read_json(path)
    if not isinstance(data, dict) or "hidden_size" not in data:
        raise ConfigError(f"{path}: not a LUKE config (no hidden_size)")
    if default_eps is not None and "layer_norm_eps" not in data:
        data = {**data, "layer_norm_eps": default_eps}
    return from_pretrained_config(data, str(path))


def _names(names: list[str]) -> str:
    return (", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")) or "none"


def convert(kind: str, src: str | Path, output: str | Path) -> tuple[LukeConfig, list[str]]:
    """Converts SRC into the model directory OUTPUT; returns (config, unused source names)."""
    from engine.atomic import atomic_directory
    from engine.tensor_file import write_tensor
    from luke_static.config import save_luke_config

    src = Path(src)
    cfg, source = read_source(kind, src)
    params, unused = to_ours(kind, source, cfg)
    with atomic_directory(output) as tmp:
        for name, value in params.items():
            write_tensor(tmp / name, value)
        save_luke_config(cfg, tmp)
        for name in TOKENIZER_FILES:
            if (src / name).is_file():
                shutil.copy(src / name, tmp / name)
    return cfg, unused


def main(argv: list[str] | None = None) -> Path:
    """Parses the command line and converts."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="kind", choices=("hf", "paddlenlp"), required=True)
    parser.add_argument("src", help="directory of the checkpoint to convert")
    parser.add_argument("--output", required=True, help="model directory to create")
    args = parser.parse_args(argv)
    cfg, unused = convert(args.kind, args.src, args.output)
    print(f"converted a {cfg.num_hidden_layers}-layer LUKE (hidden {cfg.hidden_size}, "
          f"{cfg.entity_vocab_size:,} entities) into {args.output}")
    if unused:
        print(f"not used (task heads): {_names(sorted(unused))}")
    return Path(args.output)


if __name__ == "__main__":
    run(main)
