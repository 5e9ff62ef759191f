"""LUKE's model directories, and the HF / PaddleNLP checkpoints they are converted from.

A model directory holds `luke_config.json` (the `LukeConfig`), the tokenizer
files, and one tensor file per encoder variable under HF's names (dense
weights in Paddle's [in, out] layout).

Conversion reads `hf` (`config.json` + `model.safetensors`, or
`pytorch_model.bin` read without executing its pickle) or `paddlenlp`
(`model_config.json` or `config.json` + `model_state.pdparams`), transposes
torch's dense weights, and fills the w2e/e2w/e2e queries pretrained files lack
with copies of `query`, as HF's conversion does. A fine-tuned checkpoint's
head (`qa_outputs`, `classifier`, the masked LM's `lm_head` and
`entity_predictions`) is converted too, and the directory records its task
and labels (`task.json`); `export_task` writes its task program.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import paddle

from engine.atomic import atomic_directory
from engine.config import from_dict, read_json, write_json
from engine.errors import CheckpointError, ConfigError, listing
from engine.inference import save_inference_program
from engine.variables import load_variables, write_tensor
from luke_static.config import LukeConfig, from_pretrained_config
from luke_static.heads import (
    ENCODER_CLASSES,
    HEAD_TASKS,
    LABELLED_TASKS,
    PROBLEM_TYPES,
    TASK_PROGRAMS,
    head_shapes,
)
from luke_static.model import OUTPUTS, QUERIES, luke_encoder, luke_feeds, variable_shapes

MODEL_FILE = "luke_config.json"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "sentencepiece.bpe.model", "entity_vocab.json", "entity_vocab.tsv",
                   "entity_vocab.jsonl",
                   "special_tokens_map.json", "tokenizer_config.json", "added_tokens.json")
INFERENCE_PREFIX, TASK_FILE = "luke", "task.json"
# Buffers some files carry that are not parameters.
_STALE = ("embeddings.position_ids",)
# Prefixes of task heads: not part of the encoder.
_HEADS = ("lm_head.", "entity_predictions.", "qa_outputs.", "classifier.")


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


def export_task(exe, place, model_dir: str | Path, directory: str | Path, onnx: bool = False) -> str:
    """Saves a converted fine-tuned model's task program into `directory`, which the task's pipeline
    (`luke_static.pipeline`, `python -m luke_static predict`) takes as it is: feeds and outputs under
    HF's names (`start_logits`/`end_logits`, `logits`, and `entity_logits` for the masked LM), the
    task record (`task.json`: task, labels, program) and the tokenizer; the predictor's settings stay
    at the LUKE recipes' defaults. Returns the program's path prefix."""
    from luke_static.heads import task_graph

    head = load_task(model_dir)
    if head is None:
        raise ConfigError(f"{model_dir} holds no task head (task.json); export it with export_encoder")
    cfg, directory = load_luke_config(model_dir), Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    program = paddle.static.Program()
    with paddle.static.program_guard(program, paddle.static.Program()):
        graph = task_graph(head.task, cfg, len(head.labels), untied=head.untied)
    names = {p.name for p in program.global_block().all_parameters()}
    shapes = {**variable_shapes(cfg, with_pooler=True), **head_shapes(head.task, cfg, len(head.labels), head.untied)}
    load_variables(model_dir, {n: shape for n, shape in shapes.items() if n in names}, place)
    head.program = TASK_PROGRAMS[head.task]
    prefix = save_inference_program(directory / head.program, list(graph.feeds.values()), graph.outputs, exe,
                                    program, onnx)
    save_task(directory, head)  # settings left to the predictor's defaults: the LUKE recipes'
    copy_tokenizer(model_dir, directory)
    save_luke_config(cfg, directory)
    return prefix


# -- conversion --------------------------------------------------------------------


def is_dense_weight(name: str, shape: tuple[int, ...]) -> bool:
    """Dense-layer weights are stored transposed by torch; embedding tables are not."""
    return len(shape) == 2 and not name.endswith("embeddings.weight")


def read_source(kind: str, src: Path) -> tuple[LukeConfig, dict, dict[str, np.ndarray]]:
    """The config (ours and the file's raw keys) and the named arrays of an `hf` or `paddlenlp`
    checkpoint directory."""
    from engine.weights_io import read_pdparams, read_safetensors, read_torch_bin

    if kind == "hf":
        cfg, raw = _config(src / "config.json")
        if (src / "model.safetensors").is_file():
            return cfg, raw, read_safetensors(src / "model.safetensors")
        if (src / "pytorch_model.bin").is_file():
            return cfg, raw, read_torch_bin(src / "pytorch_model.bin")
        raise CheckpointError(f"{src}: no model.safetensors or pytorch_model.bin")
    config = src / "model_config.json" if (src / "model_config.json").is_file() else src / "config.json"
    # PaddleNLP's LUKE hard-codes LayerNorm eps 1e-6, whatever its config says.
    cfg, raw = _config(config, eps=1e-6)
    if not (src / "model_state.pdparams").is_file():
        raise CheckpointError(f"{src}: no model_state.pdparams")
    return cfg, raw, read_pdparams(src / "model_state.pdparams")


def to_ours(kind: str, source: dict[str, np.ndarray], cfg: LukeConfig) -> tuple[dict[str, np.ndarray], dict]:
    """(our encoder variables, the source's head arrays by their own names); a mismatch is an error
    listing names."""
    expected = variable_shapes(cfg)
    renamed, heads = {}, {}
    for name, value in source.items():
        ours = name.removeprefix("luke.")
        if ours.startswith(_HEADS):
            heads[ours] = value
            continue
        if kind == "paddlenlp":
            ours = ours.replace("layer_norm.", "LayerNorm.")
        if ours in _STALE:
            continue
        if kind == "hf" and ours in expected and is_dense_weight(ours, expected[ours]):
            value = value.T
        renamed[ours] = np.ascontiguousarray(value, dtype=np.float32)
    _fill_entity_queries(renamed, cfg)
    if "pooler.dense.weight" not in renamed:  # HF's QA models have no pooler: keep a fresh one out
        expected = variable_shapes(cfg, with_pooler=False)
    _check_arrays(renamed, expected, f"parameter names do not match a {cfg.num_hidden_layers}-layer LUKE")
    return renamed, heads


def _check_arrays(arrays: dict, expected: dict, mismatch: str) -> None:
    """One error listing missing and unexpected names (after `mismatch`), or naming a wrong shape."""
    missing, unexpected = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{mismatch}: missing {listing(missing, 6)}; unexpected {listing(unexpected, 6)}")
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise CheckpointError(f"'{name}' has shape {list(arrays[name].shape)} in the checkpoint "
                                  f"but {list(shape)} in the config")


def _fill_entity_queries(params: dict, cfg: LukeConfig) -> None:
    if not cfg.use_entity_aware_attention:
        return
    for i in range(cfg.num_hidden_layers):
        prefix = f"encoder.layer.{i}.attention.self."
        for query in QUERIES[1:]:
            for part in ("weight", "bias"):
                if f"{prefix}query.{part}" in params:
                    params.setdefault(f"{prefix}{query}.{part}", params[f"{prefix}query.{part}"].copy())


def _config(path: Path, eps: float | None = None) -> tuple[LukeConfig, dict]:
    data = read_json(path)
    if not isinstance(data, dict) or "hidden_size" not in data:
        raise ConfigError(f"{path}: not a LUKE config (no hidden_size)")
    raw = data
    if eps is not None:
        data = {**data, "layer_norm_eps": eps}
        data.pop("layer_norm_epsilon", None)
    return from_pretrained_config(data, str(path)), raw


def convert(kind: str, src: str | Path, output: str | Path) -> tuple[LukeConfig, TaskHead | None]:
    """Converts SRC into the model directory OUTPUT, its task head included; returns (config, head)."""
    src = Path(src)
    cfg, raw, source = read_source(kind, src)
    params, heads = to_ours(kind, source, cfg)
    head = read_head(kind, raw, heads, params, cfg)
    with atomic_directory(output) as tmp:
        for name, value in {**params, **(head.arrays if head else {})}.items():
            write_tensor(tmp / name, value)
        save_luke_config(cfg, tmp)
        if head is not None:
            save_task(tmp, head)
        copy_tokenizer(src, tmp)
    return cfg, head


# -- task heads --------------------------------------------------------------------------


@dataclass
class TaskHead:
    """A task head: its task (`heads.HEAD_TASKS`), label list, variables in our layout (a checkpoint's),
    which decoders are not tied to the embeddings (masked LM), and, in an export, the program's name
    and the settings its inputs were built with (what a predictor reads back)."""

    task: str
    labels: list[str] = field(default_factory=list)
    arrays: dict = field(default_factory=dict)
    untied: tuple[str, ...] = ()
    program: str = ""
    settings: dict = field(default_factory=dict)
    problem_type: str = ""  # a sequence classifier's (`heads.PROBLEM_TYPES`)


def read_head(kind: str, config: dict, source: dict[str, np.ndarray], encoder: dict[str, np.ndarray],
              cfg: LukeConfig) -> TaskHead | None:
    """The head of a checkpoint, found by its config's `architectures` or else by its weight names;
    None for a bare encoder. The head's outputs must match the config's labels."""
    task = _head_task(config, source, cfg, kind)
    if task is None:
        return None
    arrays, untied = _head_arrays(kind, source, encoder)
    labels = _head_labels(config, task, arrays)
    _check_arrays(arrays, head_shapes(task, cfg, len(labels), untied), f"the {task} head does not match")
    return TaskHead(task, labels, arrays, untied, problem_type=_problem_type(config, task, labels))


def _problem_type(config: dict, task: str, labels: list[str]) -> str:
    """How a sequence classifier's logits are read: the config's `problem_type`, else HF's choice for
    inference (one output is a regression, more are one label each)."""
    if task != "sequence_classification":
        return ""
    problem = config.get("problem_type") or ("regression" if len(labels) == 1 else "single_label_classification")
    if problem not in PROBLEM_TYPES:
        raise CheckpointError(f"the config's problem_type {problem!r} is none of {', '.join(PROBLEM_TYPES)}")
    return problem


def _head_task(config: dict, source: dict, cfg: LukeConfig, kind: str) -> str | None:
    """The task of the checkpoint's head: the class its `architectures` names, else (a config without
    them, as older PaddleNLP files) what its weight names and widths can only mean."""
    architectures = config.get("architectures") or []
    for architecture in architectures:
        if architecture in HEAD_TASKS:
            return HEAD_TASKS[architecture]
    if any(a in ENCODER_CLASSES for a in architectures):
        if source:
            raise CheckpointError(f"the config names {architectures[0]} (an encoder) but the checkpoint holds "
                                  f"head weights {listing(sorted(source), 6)}")
        return None
    if architectures:
        raise CheckpointError(f"the config's architectures name {', '.join(architectures)}, which this project "
                              f"does not convert (LUKE's classes: {', '.join([*ENCODER_CLASSES, *HEAD_TASKS])})")
    return _task_by_weights(source, cfg, kind)


def _task_by_weights(source: dict, cfg: LukeConfig, kind: str) -> str | None:
    if "qa_outputs.weight" in source:
        return "question_answering"
    if any(name.startswith(("lm_head.", "entity_predictions.")) for name in source):
        return "masked_lm"
    if "classifier.weight" in source:
        # Its input width tells a pair or a span (start ⊕ end ⊕ entity) head; one hidden state wide is
        # an entity, a text, a token or a choice classifier alike: only PaddleNLP, whose LUKE has the
        # entity classifier alone of these, can be read without the class's name.
        width = source["classifier.weight"].shape[0 if kind == "paddlenlp" else 1]
        by_width = {2 * cfg.hidden_size: "entity_pair_classification",
                    3 * cfg.hidden_size: "entity_span_classification"}
        if kind == "paddlenlp":
            by_width[cfg.hidden_size] = "entity_classification"
        if width in by_width:
            return by_width[width]
        if width == cfg.hidden_size:
            classes = ", ".join(c for c, t in HEAD_TASKS.items() if t in (
                "entity_classification", "sequence_classification", "token_classification", "multiple_choice"))
            raise CheckpointError(f"the config has no architectures, and a classifier {cfg.hidden_size} wide fits "
                                  f"{classes}: name the class in config.json, e.g. "
                                  '"architectures": ["LukeForSequenceClassification"]')
    if source:
        raise CheckpointError(f"unknown head weights {listing(sorted(source), 6)} (not a LUKE task head)")
    return None


# PaddleNLP's head names that differ from HF's.
_TRANSFORM = "entity_predictions.transform"
_PADDLENLP_HEAD_NAMES = {"lm_head.decoder_bias": "lm_head.bias", "lm_head.decoder_weight": "lm_head.decoder.weight",
                         "entity_predictions.decoder.bias": "entity_predictions.bias",
                         **{f"{_TRANSFORM}.layer_norm.{p}": f"{_TRANSFORM}.LayerNorm.{p}" for p in ("weight", "bias")}}
# Decoders that HF ties to an embedding table, with the table (both [rows, width]).
_DECODERS = {"lm_head.decoder.weight": "embeddings.word_embeddings.weight",
             "entity_predictions.decoder.weight": "entity_embeddings.entity_embeddings.weight"}


def _head_arrays(kind: str, source: dict[str, np.ndarray], encoder: dict) -> tuple[dict, tuple[str, ...]]:
    """Head variables renamed to HF's names in our [in, out] layout; decoders equal to their tables
    are dropped (tied), others kept and listed as untied."""
    arrays, untied = {}, []
    for name, value in source.items():
        value = np.asarray(value, dtype=np.float32)
        if kind == "paddlenlp":
            name = _PADDLENLP_HEAD_NAMES.get(name, name)
        if name == "lm_head.decoder.bias":  # HF ties the two; a file holds either name (or both)
            name = "lm_head.bias"
        if name in _DECODERS:
            # torch's Linear and PaddleNLP's word decoder are [rows, width]; PaddleNLP's entity Linear is not.
            rows = value.T if (kind == "paddlenlp" and name.startswith("entity_")) else value
            if np.array_equal(rows, encoder[_DECODERS[name]]):
                continue
            arrays[name] = np.ascontiguousarray(rows.T)
            untied.append(name)
            continue
        if kind == "hf" and value.ndim == 2:
            value = value.T
        arrays[name] = np.ascontiguousarray(value)
    return arrays, tuple(sorted(untied))


def _head_labels(config: dict, task: str, arrays: dict) -> list[str]:
    if task not in LABELLED_TASKS:
        return []
    outputs = arrays["classifier.weight"].shape[-1]
    id2label = config.get("id2label") or {}
    labels = [id2label[k] for k in sorted(id2label, key=int)] if id2label else [f"LABEL_{i}" for i in range(outputs)]
    if len(labels) != outputs:
        raise CheckpointError(f"the classifier has {outputs} outputs but the config's id2label lists "
                              f"{len(labels)} labels")
    return labels


def save_task(directory: str | Path, head: TaskHead) -> None:
    """Records the task head of a model directory or an export (`task.json`): task, labels, untied
    decoders and, in an export, the program's name and its settings."""
    record = {"task": head.task, "labels": head.labels, "untied": list(head.untied)}
    if head.problem_type:
        record["problem_type"] = head.problem_type
    if head.program:
        record.update(program=head.program, settings=head.settings)
    write_json(Path(directory, TASK_FILE), record)


def load_task(directory: str | Path) -> TaskHead | None:
    """The task head a model directory or an export records (without its arrays), or None for a bare
    encoder. Exports written before the record existed are recognised by their program's name."""
    path = Path(directory, TASK_FILE)
    if not path.is_file():
        return _unrecorded_export(Path(directory))
    data = read_json(path)
    if not isinstance(data, dict) or data.get("task") not in TASK_PROGRAMS:
        raise ConfigError(f"{path}: not a task record (a 'task' among {', '.join(TASK_PROGRAMS)})")
    return TaskHead(data["task"], list(data.get("labels", [])), untied=tuple(data.get("untied", [])),
                    program=data.get("program", ""), settings=dict(data.get("settings") or {}),
                    problem_type=data.get("problem_type", ""))


def _unrecorded_export(directory: Path) -> TaskHead | None:
    """The record of an export without `task.json`: its labels and settings files, or None."""
    for task, program in TASK_PROGRAMS.items():
        if (directory / f"{program}.json").is_file():
            labels_file = directory / "labels.txt"
            labels = labels_file.read_text(encoding="utf-8").split("\n") if labels_file.is_file() else []
            settings_file = directory / f"{program}_settings.json"
            settings = read_json(settings_file) if settings_file.is_file() else {}
            return TaskHead(task, [label for label in labels if label], program=program, settings=settings)
    return None
