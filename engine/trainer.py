"""The executor loop shared by every job.

Builds the step programs from the job's graph (`engine.step`), runs them
batch after batch with carried state, evaluates, writes atomic checkpoints,
resumes exactly (`resume=True`), and exports at the end. With several ranks
(`paddle.distributed.launch`) gradients are all-reduced inside the program
and only rank 0 logs, evaluates, saves and exports.
"""

from __future__ import annotations

import math
import signal
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import paddle

from engine.atomic import atomic_entries
from engine.checkpoint import CheckpointManager, read_state, verify
from engine.errors import CheckpointError, ConfigError, DataError, PipelineError, StorageError, storage_error
from engine.inference import require_onnx
from engine.job import BatchStream, ExportSettings, Job, TrainGraph
from engine.ops import SEED_FEED, step_seed
from engine.optim import OptimConfig
from engine.plot import CURVES_FILE, LOG_FILE, VisualDLWriter, save_curves
from engine.precision import AccuracyFloor, check_precision
from engine.progress import ProgressLog
from engine.runtime import DistEnv, RuntimeConfig, all_gather_rows, rank_rows, setup
from engine.signals import RunStopped, StopSignals
from engine.step import build_step_programs
from engine.variables import load_variables, save_variables


@dataclass
class TrainConfig:
    """The `train:` section: the loop, its outputs and its schedule."""

    output_dir: str = "output/run"  # checkpoints, logs, the model and its export go here
    batch_size: int = 32  # rows per batch, per rank
    max_steps: int = 1000  # optimizer steps
    log_every: int = 100  # steps between log lines
    eval_every: int = 0  # steps between evaluations (0: at the end only)
    save_every: int = 1000  # steps between checkpoints (0: at the end only)
    keep_checkpoints: int = 3  # complete checkpoints kept
    seed: int = 0  # initialisation, shuffling, sampling and dropout all derive from it
    # A NaN/inf loss stops the run (naming the step and the last good
    # checkpoint); with this set, such a step's gradients are zeroed and the run
    # goes on (Adagrad/SGD: no update; Adam and RMSProp still move by their moments).
    skip_nonfinite_steps: bool = False
    # Also convert the exported inference program to ONNX (PREFIX.onnx, for
    # ONNX Runtime; needs the [onnx] extra).
    export_onnx: bool = False
    # Also serve the export at this precision: int8 (ONNX Runtime) or bf16 (oneDNN, where the CPU has
    # it); measured against fp32 on the dev set first, and refused below the floor (docs/serving.md)
    export_precision: str = "fp32"
    export_min_agreement: float = 0.99  # share of dev predictions unchanged
    export_min_cosine: float = 0.99  # mean cosine to fp32 of each output (ELMo's layers)
    # Start a new run (step 0) from the variables of this model or checkpoint directory
    # (jobs that can: ELMo pretraining); --resume of this run's own checkpoints takes precedence
    init_from: str = ""
    # With init_from: also take the optimizer state (Adagrad's moments) when it is there
    init_optimizer: bool = False

    def __post_init__(self):
        for name in ("batch_size", "max_steps", "log_every", "keep_checkpoints"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass
class RunState:
    """Where a run stands after a step; what a checkpoint saves besides the variables."""

    step: int = 0
    tokens: int = 0  # of all ranks
    reader: dict | None = None  # the reader's position after the last batch
    carry: dict[str, np.ndarray] = field(default_factory=dict)  # this rank's carried state, by feed name


class NonFiniteLossError(PipelineError):
    """The loss became NaN or infinite."""


class Trainer:
    """Runs a `Job` to `train.max_steps`."""

    def __init__(self, job: Job, train: TrainConfig, optim: OptimConfig, runtime: RuntimeConfig,
                 dist: DistEnv = DistEnv(), run_config: str | None = None):
        """`run_config`: the resolved config as text, kept as `config.yaml` beside the run."""
        self.job = job
        self.run_config = run_config
        self.cfg = train
        self.optim = optim
        self.runtime = runtime
        self.dist = dist
        self.output_dir = Path(train.output_dir)
        self.checkpoints = CheckpointManager(self.output_dir / "checkpoints", train.keep_checkpoints)
        if train.export_onnx:  # found out now, not after the training
            if not job.exports_onnx:
                raise ConfigError(f"train.export_onnx: the {type(job).__name__} job has no ONNX export")
            require_onnx()
        if train.export_precision != "fp32":
            check_precision(train.export_precision, "train.export_precision")
            if train.export_precision not in job.export_precisions:
                raise ConfigError(f"train.export_precision: the {type(job).__name__} job exports "
                                  f"{' or '.join(job.export_precisions)}, not {train.export_precision}")
        if train.init_from and not job.starts_from_init:
            raise ConfigError(f"train.init_from: the {type(job).__name__} job does not start from another "
                              "model's variables (LUKE tasks: model.luke)")
        if runtime.visualdl:
            VisualDLWriter.require()
        self._curves_note: str | None = None  # why curves.png cannot be drawn, once known
        self.steps_run = 0  # optimizer steps this process has taken

    def fit(self, resume: bool = False, resume_from: str | Path | None = None) -> dict:
        """Trains (or continues) to `max_steps`; returns the final evaluation metrics.

        `resume` continues from the newest intact checkpoint of `output_dir`
        (a damaged newer one is noted and set aside); `resume_from` from that
        checkpoint directory, which must be intact."""
        start, start_notes = self._find_start(resume, resume_from)
        if start is not None:
            self.job.check_checkpoint(start)
        if self.dist.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            if self.run_config is not None:
                (self.output_dir / "config.yaml").write_text(self.run_config)
        self.place = setup(self.runtime, self.dist)
        start_step = int(read_state(start)[0]["step"]) if start is not None else 0
        self.programs = build_step_programs(self.job.build_train_graph, self.optim, self.dist, self.cfg.seed,
                                            self.cfg.max_steps, start_step, self.cfg.skip_nonfinite_steps,
                                            compiled_kernels=self.runtime.kernels == "compiled")
        graph = self.programs.graph
        self.exe = paddle.static.Executor(self.place)
        for startup in self.programs.startups:
            self.exe.run(startup)
        loaded = self.job.initialize(self.exe, self.programs.step)
        state, notes = RunState(carry={c.feed: c.initial for c in graph.carry}), list(start_notes)
        if start is not None:
            state = self._restore(start, graph, notes)
        if self.runtime.kernels == "compiled":
            notes.append("runtime.kernels: compiled: the graph's dropout, attention softmax, layer norm, bias, GELU "
                         "and AdamW, where it has them, run our CPU kernels (engine/cpu_kernels.cc)")
        if self.programs.frozen:
            notes.append(f"frozen: {', '.join(self.programs.frozen)}")
        for prefix in self.programs.freeze_skipped:
            notes.append(f"optim.freeze: '{prefix}' is not built in this configuration; nothing to freeze")
        self._saved_step = state.step if start is not None else None
        sink = VisualDLWriter(self.output_dir) if self.runtime.visualdl and self.dist.is_main else None
        log = ProgressLog(self.output_dir / LOG_FILE, self.cfg.max_steps, state.step,
                          self.cfg.log_every, enabled=self.dist.is_main, metrics=self.job.step_metrics, sink=sink)
        for line in loaded:
            log.write(line)
        if start is not None:
            log.write(f"resumed from {start} at step {state.step}")
        for note in notes:
            log.write(f"note: {note}")
        try:
            state = self._loop(graph, log, state)
            metrics = self._finish(graph, log, state)
        finally:
            log.close()
        return metrics

    # -- set-up ---------------------------------------------------------------

    def _find_start(self, resume: bool, resume_from: str | Path | None) -> tuple[Path | None, list[str]]:
        if resume_from is not None:
            problems = verify(resume_from)
            if problems:
                raise CheckpointError(f"{resume_from}: {'; '.join(problems)}")
            return Path(resume_from), []
        latest = self.checkpoints.latest()
        if latest is not None and not resume:
            raise PipelineError(
                f"{self.output_dir} already holds checkpoints (latest: {latest.name}); "
                "pass --resume to continue that run, or choose another train.output_dir"
            )
        if not resume:
            return None, []
        start, notes = self.checkpoints.intact(set_aside=self.dist.is_main)
        if notes and start is None:
            raise CheckpointError(f"no intact checkpoint in {self.checkpoints.root}: {'; '.join(notes)}")
        if notes:
            notes = [*notes, f"resuming from {start.name}, the newest intact checkpoint"]
        return start, notes

    def _restore(self, checkpoint: Path, graph: TrainGraph, notes: list[str]) -> RunState:
        load_variables(checkpoint, self.programs.persistable_shapes(), self.place, allow_extra=False)
        saved, carry = read_state(checkpoint)
        notes += [f"the checkpoint was written with {key} {saved[key]}, this run uses {now}"
                  for key, now in self._run_shape().items() if key in saved and saved[key] != now]
        for c in graph.carry:
            if c.feed not in carry:
                raise CheckpointError(f"{checkpoint}: no carried state '{c.feed}' in carry.npz")
            rows = carry[c.feed]  # every rank's rows
            expected = list(c.initial.shape)
            expected[c.batch_axis] *= self.dist.world
            if list(rows.shape) == expected:
                carry[c.feed] = rank_rows(rows, c.batch_axis, self.dist.rank, self.dist.world)
            else:
                # Another batch size or number of ranks: rows cannot be mapped one to one.
                notes.append(f"carried state '{c.feed}' restarts from zero (shape {list(rows.shape)} "
                             f"in the checkpoint, {expected} for this run)")
                carry[c.feed] = c.initial
        return RunState(int(saved["step"]), int(saved.get("tokens", 0)), saved.get("reader"), carry)

    def _run_shape(self) -> dict:
        """What a checkpoint records about the run that wrote it, to flag changes on resume."""
        return {"world": self.dist.world, "batch_size": self.cfg.batch_size, "seed": self.cfg.seed,
                "accumulate_steps": self.optim.accumulate_steps, "kernels": self.runtime.kernels}

    # -- the loop ---------------------------------------------------------------

    def _loop(self, graph: TrainGraph, log: ProgressLog, state: RunState) -> RunState:
        stream: BatchStream = self.job.train_batches(state.reader)
        try:
            batches = iter(stream)
            with StopSignals() as signals:
                while state.step < self.cfg.max_steps:
                    result = self._step(graph, batches, state, log)
                    if result is None:
                        break
                    state, loss, step_tokens = result
                    self.steps_run += 1
                    if math.isfinite(loss):
                        log.step(state.step, loss, step_tokens)
                    else:  # raises unless skipping is configured
                        self._on_nonfinite(loss, state.step, log)
                    if self._due(self.cfg.save_every, state.step):
                        self._save(state, log, graph)
                    if self._due(self.cfg.eval_every, state.step):
                        self._evaluate(state.step, log)
                    signum = self._agreed_signal(signals)
                    if signum:
                        signals.restore(signal.SIGINT)  # a second Ctrl-C: now; more SIGTERMs: ignored
                        self._stop(signum, state, log, graph)
        finally:
            stream.close()
        if log.elapsed > 0:
            log.write(f"the executor waited {stream.wait_seconds:.1f} s for data "
                      f"({100 * stream.wait_seconds / log.elapsed:.1f}% of the run)")
        if state.step < self.cfg.max_steps:
            log.write(f"the training data ran out at step {state.step}")
        return state

    def _agreed_signal(self, signals: StopSignals) -> int:
        """The stop signal any rank has received by now (0: none), the same on every rank, so that all
        of them stop after the same step."""
        mine = np.array([signals.received or 0], np.int32)
        return int(all_gather_rows(mine, 0, self.dist.world).max())

    def _stop(self, signum: int, state: RunState, log: ProgressLog, graph: TrainGraph) -> None:
        if self._saved_step != state.step:
            self._save(state, log, graph)
        stopped = RunStopped(signum, state.step)
        log.write(str(stopped))
        raise stopped

    def _due(self, every: int, step: int) -> bool:
        return bool(every) and step % every == 0 and step < self.cfg.max_steps

    def _step(self, graph: TrainGraph, batches, state: RunState, log: ProgressLog):
        """One optimizer step over `accumulate_steps` micro-batches; None when the data ran out.

        Returns (the state after it, mean loss, tokens of all ranks). A
        non-finite micro-batch keeps the carried state it started from, and a
        non-finite step counts no tokens.
        """
        k = self.optim.accumulate_steps
        fetch_list = [graph.loss] + [c.fetch for c in graph.carry]
        carry, losses, tokens, reader = state.carry, [], 0, None
        for micro in range(k):
            batch = next(batches, None)
            if batch is None:
                return None
            for note in getattr(batch, "notes", ()):
                log.write(f"note: {note}")
            feed = {**batch.arrays, **carry}
            if SEED_FEED in graph.feeds:
                feed[SEED_FEED] = step_seed(self.cfg.seed, state.step * k + micro, self.dist.rank)
            loss, *carried = self.exe.run(self.programs.step, feed=feed, fetch_list=fetch_list)
            losses.append(float(loss))
            if math.isfinite(losses[-1]):
                carry = {c.feed: v for c, v in zip(graph.carry, carried)}
            tokens += batch.num_tokens * self.dist.world
            reader = batch.state
        if self.programs.update is not None:
            self.exe.run(self.programs.update)
        if self.programs.scheduler is not None:
            self.programs.scheduler.step()
        loss = sum(losses) / k
        counted = tokens if math.isfinite(loss) else 0
        return RunState(state.step + 1, state.tokens + counted, reader, carry), loss, tokens

    def _finish(self, graph: TrainGraph, log: ProgressLog, state: RunState) -> dict:
        if self._saved_step != state.step:
            self._save(state, log, graph)
        metrics = self._evaluate(state.step, log)
        if self.dist.is_main:
            settings = ExportSettings(self.cfg.export_onnx, self.cfg.export_precision,
                                      AccuracyFloor(self.cfg.export_min_agreement, self.cfg.export_min_cosine))
            for what, path in self._export(settings).items():
                log.write(f"{what}: {path}")
        return metrics

    def _export(self, settings: ExportSettings) -> dict[str, str]:
        """The job's export, staged and moved into `output_dir` output by output: a failure (a full disk)
        leaves the previous outputs as they were and nothing partial."""
        try:
            with atomic_entries(self.output_dir) as staging:
                exported = self.job.export(self.exe, staging, settings)
        except (StorageError, OSError) as exc:  # the run itself is saved
            error = storage_error(exc.__context__ or exc if isinstance(exc, StorageError) else exc,
                                  f"the export in {self.output_dir}",
                                  f"the run is complete in {self.checkpoints.latest()}: make room and run again "
                                  "with --resume to export it")
            if error is None:
                raise
            raise error from None
        return {what: str(value).replace(str(staging), str(self.output_dir)) for what, value in exported.items()}

    def _on_nonfinite(self, loss: float, step: int, log: ProgressLog) -> None:
        last = self.checkpoints.latest()
        if not self.cfg.skip_nonfinite_steps:
            raise NonFiniteLossError(
                f"loss is {loss} at step {step}; last good checkpoint: {last if last else 'none'} "
                "(resume from it with --resume, e.g. with a lower learning rate, or set "
                "train.skip_nonfinite_steps=true)"
            )
        log.write(f"step {step}: loss is {loss}; its gradients were zeroed ({_zero_gradient_effect(self.optim)})")

    def _save(self, state: RunState, log: ProgressLog, graph: TrainGraph) -> None:
        # Every rank takes part (its carried rows are gathered); rank 0 writes.
        carry = {c.feed: all_gather_rows(state.carry[c.feed], c.batch_axis, self.dist.world) for c in graph.carry}
        self._saved_step = state.step
        if not self.dist.is_main:
            return
        names = list(self.programs.persistable_shapes())

        def write_files(directory: Path) -> None:
            save_variables(directory, names)
            self.job.write_model_files(directory)

        saved = {"step": state.step, "tokens": state.tokens, "reader": state.reader, **self._run_shape()}
        try:
            path = self.checkpoints.save(state.step, write_files, saved, carry)
        except (StorageError, OSError) as exc:
            last = self.checkpoints.latest()
            error = storage_error(exc.__context__ or exc, self.checkpoints.root / f"step-{state.step:08d}",
                                  f"the last complete checkpoint is {last or 'none'} (resume from it with --resume "
                                  "once there is room)")
            if error is None:
                raise
            raise error from None
        log.write(f"saved checkpoint {path}")

    def _evaluate(self, step: int, log: ProgressLog) -> dict:
        if not self.dist.is_main:
            return {}
        metrics = self.job.evaluate(self.exe)
        log.write(f"eval at step {step} | {self.job.describe_metrics(metrics)}",
                  {"step": step, "eval": metrics})
        self._draw_curves(log)
        return metrics

    def _draw_curves(self, log: ProgressLog) -> None:
        """Redraws RUN_DIR/curves.png from the log (rank 0). A picture never stops a run: without
        matplotlib (or with a log it cannot read) it says so once and draws no more."""
        if self._curves_note is not None:
            return
        try:
            save_curves([self.output_dir], self.output_dir / CURVES_FILE)
        except (ConfigError, DataError, StorageError) as exc:
            self._curves_note = str(exc)
            log.write(f"note: no {CURVES_FILE}: {exc}")


def _zero_gradient_effect(optim: OptimConfig) -> str:
    """What a step with zeroed gradients still does to the parameters, for the log."""
    if optim.name in ("sgd", "adagrad"):
        return "no update"
    decay = " and weight decay" if optim.name == "adamw" and optim.weight_decay else ""
    return f"no new gradient, but {optim.name} still moves the parameters by its moments{decay}"
