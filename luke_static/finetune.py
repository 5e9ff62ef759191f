"""What the LUKE fine-tuning jobs share, so that a task is its data, its head and its metric.

`LukeTask` holds the converted encoder (config, weights, tokenizer), caches
the training features once as arrays that a worker process batches, builds
the training graph and the decoding program from the task's builder
(`luke_static.heads`), runs a split through the decoder in batches, and
writes the model files (config, tokenizer) into checkpoints and exports.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import paddle

from engine.inference import run_in_batches, save_inference_program
from engine.job import Job, TrainGraph
from engine.runtime import DistEnv
from engine.variables import load_variables
from luke_static.formats import copy_tokenizer, load_luke_config, save_luke_config
from luke_static.heads import TaskGraph
from luke_static.model import variable_shapes
from luke_static.tokenizer import LukeTokenizer
from reader.arrays import ArrayStream, save_arrays
from reader.prefetch import Prefetcher


@dataclass
class FineTuneModelConfig:
    """The `model:` section of a fine-tuning job: which converted LUKE to start from."""

    luke: str = "models/luke-large"  # a directory from `python -m luke_static.convert`


class LukeTask(Job):
    """Base of a fine-tuning job on a converted model directory (`cfg.model.luke`).

    A task implements `task_graph(training)` (its builder from
    `luke_static.heads`), `evaluate`, and `export`; it calls
    `save_train_features` once with its encoded training set.
    """

    def __init__(self, cfg, dist: DistEnv = DistEnv(), **tokenizer_settings):
        self.cfg = cfg
        self.dist = dist
        self.model_dir = Path(cfg.model.luke)
        self.luke = load_luke_config(self.model_dir)
        self.tokenizer = LukeTokenizer.from_dir(self.model_dir, add_prefix_space=True, **tokenizer_settings)
        self.work_dir = Path(cfg.train.output_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.train_file = self.work_dir / "train_features.npz"
        self._decoder: tuple | None = None

    @abstractmethod
    def task_graph(self, training: bool) -> TaskGraph:
        """The task model built into the current program (loss and labels in training)."""

    def save_train_features(self, arrays: dict[str, np.ndarray]) -> None:
        """Keeps the encoded training set where the reader process loads it from."""
        save_arrays(self.train_file, arrays)

    # -- engine interface ----------------------------------------------------------

    def build_train_graph(self) -> TrainGraph:
        g = self.task_graph(training=True)
        return TrainGraph(feeds=g.feeds, loss=g.loss)

    def initialize(self, exe, program) -> list[str]:
        """Loads the pretrained encoder variables the program has (not the new head)."""
        names = {p.name for p in program.global_block().all_parameters()}
        shapes = {n: s for n, s in variable_shapes(self.luke, with_pooler=True).items() if n in names}
        loaded = load_variables(self.model_dir, shapes, exe.place)
        return [f"LUKE encoder from {self.model_dir}: {len(loaded)} variables"]

    def train_batches(self, reader_state):
        stream = ArrayStream(str(self.train_file), self.cfg.train.batch_size, shuffle=True,
                             seed=self.cfg.train.seed, loop=True, drop_last=True)
        return Prefetcher(stream, reader_state, capacity=self.cfg.data.prefetch)

    def write_model_files(self, directory: Path) -> None:
        save_luke_config(self.luke, directory)
        copy_tokenizer(self.model_dir, directory)

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
            values = exe.run(program, feed={k: feed[k] for k in graph.feeds}, fetch_list=list(graph.outputs.values()))
            return dict(zip(graph.outputs, values))

        return run_in_batches(run, arrays, self.cfg.train.batch_size)

    def export_program(self, exe, output_dir: Path, prefix_name: str) -> str:
        """Saves the decoder with named outputs into `output_dir/inference/`, with the model files."""
        program, graph = self.decoding_program()
        directory = Path(output_dir, "inference")
        prefix = save_inference_program(directory / prefix_name, list(graph.feeds.values()), graph.outputs,
                                        exe, program)
        self.write_model_files(directory)
        return f"{prefix}.json"
