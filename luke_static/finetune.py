"""What the LUKE fine-tuning jobs share, so that a task is its data, its head and its metric.

`LukeTask` holds the converted encoder (config, weights, tokenizer), caches
the encoded training set once as arrays that a worker process batches,
builds the training graph and the decoding program from the task's builder
(`luke_static.heads`), runs a split through the decoder in batches, keeps
the parameters of the best dev evaluation and restores them for the end,
scores the test split, and exports the decoder with named outputs beside the
model files (config, tokenizer, the task record: labels and input settings).

A task subclass supplies: `config_class` (whose `data:` section extends
`TaskDataConfig`), `head_task`, `task_graph(training)`, `score(exe, split)`
over the splits it encoded into `self.splits` (with `save_train_features` for
the training set), and, where it has them, `head_labels`, `describe_data`,
`describe_metrics`, `predict_settings` and `write_outputs`. Its predictor is
the `Pipeline` in its folder's `predict.py`.
"""

from __future__ import annotations

import json
import os
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import paddle

from engine.atomic import atomic_directory
from engine.config import check_files, section
from engine.errors import ConfigError, listing
from engine.inference import lower_precision, run_in_batches, save_inference_program
from engine.job import ExportSettings, Job, TrainGraph
from engine.optim import OptimConfig
from engine.precision import ComparingProgram, OutputCheck, describe
from engine.runtime import DistEnv, RuntimeConfig
from engine.trainer import TrainConfig
from engine.variables import get_value, load_variables, save_variables, set_value
from luke_static.formats import TaskHead, copy_tokenizer, load_luke_config, load_task, save_luke_config, save_task
from luke_static.heads import TASK_PROGRAMS, TaskGraph, head_shapes
from luke_static.model import variable_shapes
from luke_static.tokenizer import load_tokenizer
from reader.arrays import ArrayStream, save_arrays
from reader.prefetch import Prefetcher

BEST_DIR, TEST_METRICS = "best", "test_metrics.json"


def release_optim(learning_rate: float, accumulate_steps: int, **changes) -> OptimConfig:
    """An `optim:` section with the LUKE release's AdamW recipe: β2 0.98, eps 1e-6, decay 0.01 (not on
    biases and LayerNorm weights), 6 % linear warm-up then linear decay."""
    return section(OptimConfig, name="adamw", learning_rate=learning_rate, beta2=0.98, epsilon=1e-6,
                   weight_decay=0.01, schedule="linear", warmup_ratio=0.06, accumulate_steps=accumulate_steps,
                   **changes)


@dataclass
class FineTuneModelConfig:
    """The `model:` section of a fine-tuning job: which converted LUKE to start from."""

    luke: str = "models/luke-large"  # a directory from `python -m luke_static convert`


@dataclass
class TaskDataConfig:
    """The `data:` section every LUKE task has (a task's own section adds to it): its files, in the
    task's format."""

    train: str = ""  # the training file
    dev: str = ""  # scored at every evaluation; the best evaluation's parameters are kept
    test: str = ""  # optional: scored with the kept parameters at the end ("" skips it)
    max_seq_length: int = 256  # tokens per input, special tokens included
    prefetch: int = 16  # batches kept ready ahead of the executor


@dataclass
class TaskRunConfig:
    """A whole LUKE fine-tuning run: a task's config redeclares `data` (its `TaskDataConfig`), and its
    recipe's `train` and `optim`; the model and the runtime are the same for every task."""

    data: TaskDataConfig = section(TaskDataConfig)
    model: FineTuneModelConfig = section(FineTuneModelConfig)
    train: TrainConfig = section(TrainConfig)
    optim: OptimConfig = release_optim(1e-5, accumulate_steps=1)
    runtime: RuntimeConfig = section(RuntimeConfig, threads=0)


class LukeTask(Job):
    """Base of a fine-tuning job on a converted model directory (`cfg.model.luke`)."""

    head_task: str  # the `heads.HEAD_TASKS` value of its head: a converted checkpoint's head of it is loaded
    # The dev metric whose best evaluation's parameters are kept and exported
    # (None: the parameters of the last step).
    best_metric: str | None = "f1"
    export_precisions = ("fp32", "int8", "bf16")

    def __init__(self, cfg, dist: DistEnv = DistEnv(), **tokenizer_settings):
        check_files(cfg.data, "data", required=("train", "dev"), optional=("test",))
        self.cfg = cfg
        self.dist = dist
        self.model_dir = Path(cfg.model.luke)
        self.luke = load_luke_config(self.model_dir)
        self.tokenizer = load_tokenizer(self.model_dir, add_prefix_space=True, **tokenizer_settings)
        self.work_dir = Path(cfg.train.output_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.train_file = self.work_dir / "train_features.npz"
        self.splits: dict = {}  # "dev" (and "test") → what `score` reads
        self.best: float | None = None
        self._decoder: tuple | None = None
        self._runner = None  # an inference program `decode` runs instead of the decoder (`score_with`)

    @abstractmethod
    def task_graph(self, training: bool) -> TaskGraph:
        """The task model built into the current program (loss and labels in training)."""

    @abstractmethod
    def score(self, exe, split: str) -> dict[str, float]:
        """The task's metrics on `split` with the current parameters."""

    def save_train_features(self, arrays: dict[str, np.ndarray]) -> None:
        """Keeps the encoded training set where the reader process loads it from."""
        rows, batch = len(next(iter(arrays.values()))), self.cfg.train.batch_size
        if rows < batch:  # batches are whole: not one would ever come
            raise ConfigError(f"{self.cfg.data.train}: {rows} training rows (features) are fewer than "
                              f"train.batch_size {batch}; lower it (-o train.batch_size={rows})")
        save_arrays(self.train_file, arrays)

    def describe_data(self) -> str:
        """The task's data in a few words, for the line printed before training."""
        return type(self).__name__

    def data_notes(self) -> list[str]:
        """What encoding the data had to do that a user should know (long inputs cut, say)."""
        return []

    def summary(self) -> str:
        cfg = self.cfg
        line = (f"{self.describe_data()} | {self.luke.num_hidden_layers}-layer LUKE from {cfg.model.luke} | "
                f"batch {cfg.train.batch_size}×{self.dist.world} ranks×{cfg.optim.accumulate_steps} accumulated")
        return "\n".join([line, *(f"note: {note}" for note in self.data_notes())])

    @property
    def inference_prefix(self) -> str:
        """The exported program's file name."""
        return TASK_PROGRAMS[self.head_task]

    def predict_settings(self) -> dict:
        """How this run built its inputs, which the task's pipeline must repeat (kept in the export's
        task record)."""
        return {"max_seq_length": self.cfg.data.max_seq_length}

    def write_outputs(self, exe, output_dir: Path) -> dict[str, str]:
        """Files the run leaves besides the export (e.g. dev predictions); returns {what: path}."""
        return {}

    # -- engine interface ----------------------------------------------------------

    def build_train_graph(self) -> TrainGraph:
        g = self.task_graph(training=True)
        built = {p.name for p in paddle.static.default_main_program().global_block().all_parameters()}
        # E.g. the entity table of a words-only run, which a recipe may freeze.
        unbuilt = tuple(name for name in variable_shapes(self.luke, with_pooler=True) if name not in built)
        return TrainGraph(feeds=g.feeds, loss=g.loss, unbuilt_parameters=unbuilt)

    def head_labels(self) -> list[str]:
        """The classifier's labels in its output order ([] for a head without labels)."""
        return []

    def initialize(self, exe, program) -> list[str]:
        """Loads the pretrained encoder variables the program has, and the head too when the model
        directory is a converted fine-tuned checkpoint of this task with the same labels."""
        names = {p.name for p in program.global_block().all_parameters()}
        shapes = {n: s for n, s in variable_shapes(self.luke, with_pooler=True).items() if n in names}
        loaded = load_variables(self.model_dir, shapes, exe.place)
        return [f"LUKE encoder from {self.model_dir}: {len(loaded)} variables", *self._load_head(exe.place)]

    def _load_head(self, place) -> list[str]:
        head = load_task(self.model_dir)
        if head is None or head.task != self.head_task:
            return []  # a bare encoder, or a pretrained masked LM: the head starts fresh
        labels = self.head_labels()
        if sorted(head.labels) != sorted(labels):
            return [f"note: {self.model_dir} holds a {head.task} head for {len(head.labels)} other labels "
                    f"({listing(head.labels, 4)}); this run's {len(labels)} labels get a fresh head"]
        shapes = head_shapes(head.task, self.luke, len(labels))
        load_variables(self.model_dir, shapes, place)
        if head.labels != labels:  # the same labels in another order: the classifier's columns follow them
            order = [head.labels.index(label) for label in labels]
            for name in shapes:
                set_value(name, get_value(name)[..., order], place)
        return [f"{head.task} head from {self.model_dir}" + (f" ({len(labels)} labels)" if labels else "")]

    def train_batches(self, reader_state):
        stream = ArrayStream(str(self.train_file), self.cfg.train.batch_size, shuffle=True,
                             seed=self.cfg.train.seed, loop=True, drop_last=True)
        return Prefetcher(stream, reader_state, capacity=self.cfg.data.prefetch)

    def evaluate(self, exe) -> dict[str, float]:
        metrics = self.score(exe, "dev")
        if self.best_metric is None:
            return metrics
        if self.best is None or metrics[self.best_metric] > self.best:  # keep the best parameters so far
            self.best = metrics[self.best_metric]
            with atomic_directory(self.work_dir / BEST_DIR) as tmp:
                save_variables(tmp, self._parameter_shapes())
        return {**metrics, f"best_{self.best_metric}": self.best}

    def write_model_files(self, directory: Path) -> None:
        save_luke_config(self.luke, directory)
        copy_tokenizer(self.model_dir, directory)
        save_task(directory, TaskHead(self.head_task, self.head_labels(), program=self.inference_prefix,
                                      settings=self.predict_settings()))

    def export(self, exe, output_dir: Path, settings: ExportSettings = ExportSettings()) -> dict[str, str]:
        """Restores the best dev parameters, scores the test split with them, writes outputs, exports
        (at `settings.precision` too, checked on the dev set)."""
        written = {}
        if self.best_metric is not None and (self.work_dir / BEST_DIR).is_dir():
            load_variables(self.work_dir / BEST_DIR, self._parameter_shapes(), exe.place)
            written[f"restored the parameters of the best dev {self.best_metric}"] = f"{self.best:.4f}"
        if "test" in self.splits:
            test = self.score(exe, "test")
            path = Path(output_dir, TEST_METRICS)
            path.write_text(json.dumps(test, indent=1))
            written["test"] = f"{self.describe_metrics(test)} ({path})"
        written.update(self.write_outputs(exe, output_dir))
        written["exported program"] = self.export_program(exe, output_dir, settings.onnx)
        prefix = written["exported program"].removesuffix(".json")
        if settings.onnx:
            written["exported ONNX program"] = f"{prefix}.onnx"
        if settings.precision != "fp32":
            record = lower_precision(prefix, settings.precision, lambda reference, candidate: self.measure_on_dev(
                exe, reference, candidate), settings.floor, threads=self.cfg.runtime.threads or os.cpu_count() or 1)
            written[f"exported {record.precision} program"] = f"{Path(prefix).parent / record.file}"
            written[f"{record.precision} check"] = describe(record.check)
        return written

    def measure_on_dev(self, exe, reference, candidate) -> dict:
        """How `candidate` (a lower-precision export) differs from `reference` (fp32) on the dev split:
        each output (`OutputCheck`), the share of top labels unchanged (`agreement`: the least over the
        logits outputs; QA's start and end positions), and the dev metrics of both."""
        check = OutputCheck()
        fp32 = self.score_with(exe, reference, "dev")
        lowered = self.score_with(exe, ComparingProgram(reference, candidate, check), "dev")
        outputs = check.summary()
        measured = {"outputs": outputs, "agreement": min(s["top_agreement"] for s in outputs.values())}
        for name, value in fp32.items():
            if isinstance(value, float) and isinstance(lowered.get(name), float):
                measured[f"dev_{name}_change"] = lowered[name] - value
        return measured

    def score_with(self, exe, program, split: str) -> dict:
        """`score` with the decoder's outputs from `program` (an inference program's `run`)."""
        self._runner = program
        try:
            return self.score(exe, split)
        finally:
            self._runner = None

    # -- decoding -------------------------------------------------------------------------

    def decoding_program(self) -> tuple[paddle.static.Program, TaskGraph]:
        """(program, graph) of the task model without loss, sharing the training parameters by name."""
        if self._decoder is None:
            program = paddle.static.Program()
            with paddle.static.program_guard(program, paddle.static.Program()), paddle.utils.unique_name.guard():
                self._decoder = program, self.task_graph(training=False)
        return self._decoder

    def decode(self, exe, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The task model's outputs over `arrays`, run in batches, by output name."""
        program, graph = self.decoding_program()

        def run(feed: dict) -> dict:
            if self._runner is not None:
                return self._runner.run({k: feed[k] for k in graph.feeds})
            values = exe.run(program, feed={k: feed[k] for k in graph.feeds}, fetch_list=list(graph.outputs.values()))
            return dict(zip(graph.outputs, values))

        return run_in_batches(run, arrays, self.cfg.train.batch_size)

    def export_program(self, exe, output_dir: Path, onnx: bool = False) -> str:
        """Saves the decoder with named outputs into `output_dir/inference/`, with the model files
        (`onnx`: also as ONNX)."""
        program, graph = self.decoding_program()
        directory = Path(output_dir, "inference")
        prefix = save_inference_program(directory / self.inference_prefix, list(graph.feeds.values()), graph.outputs,
                                        exe, program, onnx)
        self.write_model_files(directory)
        return f"{prefix}.json"

    def _parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        program, _ = self.decoding_program()
        return {p.name: tuple(p.shape) for p in program.global_block().all_parameters()}
