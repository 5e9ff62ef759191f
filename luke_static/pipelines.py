"""One call from a LUKE model to results: `luke_static.pipeline(task, model)`.

    from luke_static import pipeline

    ner = pipeline("ner", "output/ner/inference")
    ner("Peter Blackburn visited Brussels .")
    # [{'text': 'Peter Blackburn', 'label': 'PER', 'start': 0, 'end': 15, 'score': 0.97}, …]

The tasks (each task folder's `predict.py`): `ner`, `relation`,
`entity_typing`, `question_answering`, `text_classification`,
`token_classification`, `multiple_choice`, `fill_mask`. `model` is an export
(a fine-tuning run's `inference/` directory, or `python -m luke_static
export` of a converted fine-tuned checkpoint), or a converted model
directory with its head, which is exported on the fly. The export's task
record (`task.json`) says which task it serves, and a pipeline of another
task refuses it in one line. The program runs in ONNX Runtime when the
export has its `.onnx` file and the `onnx` extra is installed, otherwise in
`paddle.inference` (`backend=` chooses); Paddle is never seen.

`python -m luke_static predict --model EXPORT --input FILE` runs the
export's pipeline over a file and prints one JSON record per input.
"""

from __future__ import annotations

import importlib
import pkgutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from engine.errors import ConfigError, PipelineError
from luke_static.formats import TaskHead, load_task
from luke_static.heads import TASK_PROGRAMS
from luke_static.tokenizer import load_tokenizer


class Pipeline(ABC):
    """A task's export, loaded once and called on inputs (see each task's `predict.py`)."""

    task: ClassVar[str]  # the name `pipeline()` takes
    head_task: ClassVar[str]  # the head it serves (`heads.HEAD_TASKS` value), as the task record names it
    tokenizer_mode: ClassVar[str | None] = None  # the tokenizer's `task=…`
    input_format: ClassVar[str]  # what `predict --input` reads, for its help
    default_settings: ClassVar[dict] = {}  # input settings of an export that records none (the LUKE recipes')
    batch_size: ClassVar[int] = 8  # inputs per run of the program

    def __init__(self, model: str | Path, backend: str = "auto", threads: int = 2, device: str = "auto",
                 precision: str = "recorded"):
        """`model`: an export or a converted model directory with this task's head; `backend`: `auto`,
        `paddle` or `onnxruntime`; `threads`: CPU threads; `device`: `auto`, `cpu` or `gpu`;
        `precision`: what the export records (`recorded`), or `fp32` (see
        `engine.inference.InferenceProgram`)."""
        directory = Path(model)
        self.record = _task_record(directory, self)
        self.labels = self.record.labels
        self.settings = {**self.default_settings, **self.record.settings}
        self.tokenizer = load_tokenizer(directory, add_prefix_space=True, task=self.tokenizer_mode)
        self.program = _load_program(directory, self.record, backend, threads, device, precision)
        self.backend = self.program.backend

    @abstractmethod
    def __call__(self, inputs, **kwargs):
        """Results for one input, or a list of results for a list of inputs."""

    @abstractmethod
    def read(self, path: str | Path) -> list:
        """The inputs of a file in `input_format`, as this pipeline takes them."""

    def records(self, path: str | Path) -> Iterator[dict]:
        """One JSON-ready record per input of a file: the input and its results (`predict`'s output)."""
        inputs = self.read(path)
        for item, result in zip(inputs, self(inputs)):
            record = self.record_of(item, result)
            if record is not None:
                yield record

    @abstractmethod
    def record_of(self, item, result) -> dict | None:
        """What `predict` prints for one input and its result (None: nothing, e.g. for a blank line)."""

    def run(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The program's outputs over `arrays`, run `batch_size` rows at a time."""
        from engine.inference import run_in_batches

        if not len(next(iter(arrays.values()))):
            return {}
        return run_in_batches(self.program.run, arrays, self.batch_size)


def pipeline(task: str, model: str | Path, backend: str = "auto", threads: int = 2, **options) -> Pipeline:
    """The `task` pipeline over `model` (an export, or a converted model directory with the task's head).

    `task` is `ner`, `relation`, `entity_typing`, `question_answering`,
    `text_classification`, `token_classification`, `multiple_choice` or
    `fill_mask` (HF's hyphenated spellings too); calling the pipeline returns
    dicts with labels and scores, and text spans with their character offsets
    where the task has them (see each task's `predict.py`). `options`:
    `device` and `precision` (see `Pipeline`).
    """
    pipelines = registered_pipelines()
    name = task.replace("-", "_")  # HF's names (`text-classification`, `fill-mask`) too
    if name not in pipelines:
        raise ConfigError(f"unknown task '{task}' (tasks: {', '.join(pipelines)})")
    return pipelines[name](model, backend=backend, threads=threads, **options)


def pipeline_for(model: str | Path, backend: str = "auto", threads: int = 2, **options) -> Pipeline:
    """The pipeline of the task `model` records."""
    if not Path(model).is_dir():
        raise ConfigError(f"{model}: no such directory (a task export or a converted model directory)")
    head = load_task(model)
    if head is None:
        raise ConfigError(f"{model} is no task export (no task.json and no task program): export a fine-tuned "
                          "model first (python -m luke_static export), or take a run's inference/ directory")
    return pipeline(task_name(head.task), model, backend, threads, **options)


def registered_pipelines() -> dict[str, type[Pipeline]]:
    """Task name → pipeline class: the `PIPELINE` of every task folder's `predict.py`."""
    import luke_static

    found = {}
    for module in pkgutil.iter_modules(luke_static.__path__):
        if module.ispkg and importlib.util.find_spec(f"luke_static.{module.name}.predict") is not None:
            cls = importlib.import_module(f"luke_static.{module.name}.predict").PIPELINE
            found[cls.task] = cls
    return dict(sorted(found.items()))


def task_name(head_task: str) -> str:
    """The pipeline task that serves a head task."""
    for name, cls in registered_pipelines().items():
        if cls.head_task == head_task:
            return name
    raise ConfigError(f"no pipeline serves the {head_task} head")


def _task_record(directory: Path, wanted: Pipeline) -> TaskHead:
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such directory (a task export or a converted model directory)")
    head = load_task(directory)
    if head is None:
        raise ConfigError(f"{directory} holds no task (no task.json): it is not a {wanted.task} export or a "
                          "converted fine-tuned checkpoint")
    if head.task != wanted.head_task:
        other = task_name(head.task)
        kind = "export" if (directory / f"{head.program or TASK_PROGRAMS[head.task]}.json").is_file() else "model"
        raise ConfigError(f"{directory} is a {other} {kind}, not {wanted.task}: use pipeline('{other}', …) or "
                          f"python -m luke_static predict (it reads the task from the {kind})")
    return head


def _load_program(directory: Path, head: TaskHead, backend: str, threads: int, device: str, precision: str):
    """The task's program: the export's, or one exported now from a converted model directory."""
    from engine.inference import InferenceProgram

    prefix = directory / (head.program or TASK_PROGRAMS[head.task])
    if Path(f"{prefix}.json").is_file():
        return InferenceProgram(prefix, threads, backend=backend, device=device, precision=precision)
    # A converted model directory: its task program, exported into a scratch directory and loaded.
    with tempfile.TemporaryDirectory() as scratch:
        prefix = _export_now(directory, Path(scratch), threads, onnx=backend == "onnxruntime")
        return InferenceProgram(prefix, threads, backend="paddle" if backend == "auto" else backend, device=device,
                                precision="fp32" if precision == "recorded" else precision)


def _export_now(directory: Path, scratch: Path, threads: int, onnx: bool) -> str:
    import paddle

    from engine.runtime import set_threads, static_mode
    from luke_static.formats import export_task

    set_threads(threads)
    with static_mode(), paddle.static.scope_guard(paddle.static.Scope()):
        place = paddle.CPUPlace()
        return export_task(paddle.static.Executor(place), place, directory, scratch, onnx=onnx)


def as_list(inputs, single: type | tuple) -> tuple[list, bool]:
    """(`inputs` as a list, whether it was one input of type `single`)."""
    if isinstance(inputs, single):
        return [inputs], True
    if not isinstance(inputs, (list, tuple)):
        raise PipelineError(f"expected one input or a list of them, got {type(inputs).__name__}")
    return list(inputs), False


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)

