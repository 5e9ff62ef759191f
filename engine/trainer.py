"""The executor loop shared by every job.

Builds the training program from the job's graph plus the configured
optimizer, runs it step by step with carried state, evaluates, writes atomic
checkpoints, resumes exactly (`resume=True`), and exports at the end. With
several ranks (`paddle.distributed.launch`) gradients are all-reduced inside
the program and only rank 0 logs, evaluates, saves and exports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import paddle

from engine.checkpoint import CheckpointManager, read_state
from engine.distributed import all_gather_rows, rank_rows
from engine.dropout import SEED_FEED, step_seed
from engine.errors import CheckpointError, PipelineError
from engine.job import Job, TrainGraph
from engine.optim import OptimConfig
from engine.progress import ProgressLog
from engine.runtime import DistEnv, RuntimeConfig, setup
from engine.step_programs import build_step_programs
from engine.variables import load_variables, save_variables


@dataclass
class TrainConfig:
    """The `train:` section: the loop, its outputs and its schedule."""

    output_dir: str = "output/run"
    batch_size: int = 32  # per rank
    max_steps: int = 1000
    log_every: int = 100
    eval_every: int = 0  # 0: evaluate at the end only
    save_every: int = 1000  # 0: save at the end only
    keep_checkpoints: int = 3
    seed: int = 0
    # A NaN/inf loss stops the run (naming the step and the last good
    # checkpoint); with this set, such a step applies no gradient and the run goes on.
    skip_nonfinite_steps: bool = False

    def __post_init__(self):
        for name in ("batch_size", "max_steps", "log_every", "keep_checkpoints"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


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

    def fit(self, resume: bool = False) -> dict:
        """Trains (or continues) to `max_steps`; returns the final evaluation metrics."""
        start = self._find_start(resume)
        if start is not None:
            self.job.check_checkpoint(start)
        if self.dist.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            if self.run_config is not None:
                (self.output_dir / "config.yaml").write_text(self.run_config)
        self.place = setup(self.runtime, self.dist)
        start_step = int(read_state(start)[0]["step"]) if start is not None else 0
        self.programs = build_step_programs(self.job, self.optim, self.dist, self.cfg.seed, self.cfg.max_steps,
                                            start_step, self.cfg.skip_nonfinite_steps)
        graph = self.programs.graph
        self.exe = paddle.static.Executor(self.place)
        for startup in self.programs.startups:
            self.exe.run(startup)
        self.job.initialize(self.exe, self.programs.step)
        step, tokens, reader_state, carry, notes = 0, 0, None, {c.feed: c.initial for c in graph.carry}, []
        if start is not None:
            step, tokens, reader_state, carry, notes = self._restore(start, graph)
        if self.programs.frozen:
            notes.append(f"frozen: {', '.join(self.programs.frozen)}")
        self._saved_step = step if start is not None else None
        log = ProgressLog(self.output_dir / "train_log.jsonl", self.cfg.max_steps, step,
                          self.cfg.log_every, enabled=self.dist.is_main, perplexity=graph.report_perplexity)
        if start is not None:
            log.write(f"resumed from {start} at step {step}")
        for note in notes:
            log.write(f"note: {note}")
        try:
            step, tokens, reader_state, carry = self._loop(graph, log, step, tokens, reader_state, carry)
            metrics = self._finish(graph, log, step, tokens, reader_state, carry)
        finally:
            log.close()
        return metrics

    # -- set-up ---------------------------------------------------------------

    def _find_start(self, resume: bool) -> Path | None:
        latest = self.checkpoints.latest()
        if latest is not None and not resume:
            raise PipelineError(
                f"{self.output_dir} already holds checkpoints (latest: {latest.name}); "
                "pass --resume to continue that run, or choose another train.output_dir"
            )
        return latest if resume else None

    def _restore(self, checkpoint: Path, graph: TrainGraph):
        load_variables(checkpoint, self.programs.persistable_shapes(), self.place, allow_extra=False)
        state, carry = read_state(checkpoint)
        notes = [f"the checkpoint was written with {key} {state[key]}, this run uses {now}"
                 for key, now in self._run_shape().items() if key in state and state[key] != now]
        for c in graph.carry:
            if c.feed not in carry:
                raise CheckpointError(f"{checkpoint}: no carried state '{c.feed}' in carry.npz")
            saved = carry[c.feed]  # every rank's rows
            expected = list(c.initial.shape)
            expected[c.batch_axis] *= self.dist.world
            if list(saved.shape) == expected:
                carry[c.feed] = rank_rows(saved, c.batch_axis, self.dist.rank, self.dist.world)
            else:
                # Another batch size or number of ranks: rows cannot be mapped one to one.
                notes.append(f"carried state '{c.feed}' restarts from zero (shape {list(saved.shape)} "
                             f"in the checkpoint, {expected} for this run)")
                carry[c.feed] = c.initial
        return int(state["step"]), int(state.get("tokens", 0)), state.get("reader"), carry, notes

    def _run_shape(self) -> dict:
        """What a checkpoint records about the run that wrote it, to flag changes on resume."""
        return {"world": self.dist.world, "batch_size": self.cfg.batch_size, "seed": self.cfg.seed,
                "accumulate_steps": self.optim.accumulate_steps}

    # -- the loop ---------------------------------------------------------------

    def _loop(self, graph: TrainGraph, log: ProgressLog, step, tokens, reader_state, carry):
        batches = self.job.train_batches(reader_state)
        try:
            micro_batches = iter(batches)
            while step < self.cfg.max_steps:
                result = self._step(graph, micro_batches, step, carry)
                if result is None:
                    break
                loss, step_tokens, carry, reader_state = result
                step += 1
                if math.isfinite(loss):
                    tokens += step_tokens
                    log.step(step, loss, step_tokens)
                else:  # raises unless skipping is configured
                    self._on_nonfinite(loss, step, log)
                if self.cfg.save_every and step % self.cfg.save_every == 0 and step < self.cfg.max_steps:
                    self._save(step, tokens, reader_state, carry, log, graph)
                if self.cfg.eval_every and step % self.cfg.eval_every == 0 and step < self.cfg.max_steps:
                    self._evaluate(step, log)
        finally:
            close = getattr(batches, "close", None)
            if close:
                close()
        waited = getattr(batches, "wait_seconds", None)
        if waited is not None and log.elapsed > 0:
            log.write(f"the executor waited {waited:.1f} s for data ({100 * waited / log.elapsed:.1f}% of the run)")
        if step < self.cfg.max_steps:
            log.write(f"the training data ran out at step {step}")
        return step, tokens, reader_state, carry

    def _step(self, graph: TrainGraph, micro_batches, step: int, carry):
        """One optimizer step over `accumulate_steps` micro-batches; None when the data ran out.

        Returns (mean loss, tokens of all ranks, carried state, reader state).
        A non-finite micro-batch keeps the carried state it started from.
        """
        k = self.optim.accumulate_steps
        fetch_list = [graph.loss] + [c.fetch for c in graph.carry]
        losses, tokens, reader_state = [], 0, None
        for micro in range(k):
            batch = next(micro_batches, None)
            if batch is None:
                return None
            feed = {**batch.arrays, **carry}
            if SEED_FEED in graph.feeds:
                feed[SEED_FEED] = step_seed(self.cfg.seed, step * k + micro, self.dist.rank)
            loss, *carried = self.exe.run(self.programs.step, feed=feed, fetch_list=fetch_list)
            losses.append(float(loss))
            if math.isfinite(losses[-1]):
                carry = {c.feed: v for c, v in zip(graph.carry, carried)}
            tokens += batch.num_tokens * self.dist.world
            reader_state = batch.state
        if self.programs.update is not None:
            self.exe.run(self.programs.update)
        if self.programs.scheduler is not None:
            self.programs.scheduler.step()
        return sum(losses) / k, tokens, carry, reader_state

    def _finish(self, graph: TrainGraph, log: ProgressLog, step, tokens, reader_state, carry) -> dict:
        if self._saved_step != step:
            self._save(step, tokens, reader_state, carry, log, graph)
        metrics = self._evaluate(step, log)
        if self.dist.is_main:
            for what, path in self.job.export(self.exe, self.output_dir).items():
                log.write(f"exported {what}: {path}")
        return metrics

    def _on_nonfinite(self, loss: float, step: int, log: ProgressLog) -> None:
        last = self.checkpoints.latest()
        if not self.cfg.skip_nonfinite_steps:
            raise NonFiniteLossError(
                f"loss is {loss} at step {step}; last good checkpoint: {last if last else 'none'} "
                "(resume from it with --resume, e.g. with a lower learning rate, or set "
                "train.skip_nonfinite_steps=true)"
            )
        log.write(f"step {step}: loss is {loss}; the step was skipped (no update)")

    def _save(self, step, tokens, reader_state, carry, log: ProgressLog, graph: TrainGraph) -> None:
        # Every rank takes part (its carried rows are gathered); rank 0 writes.
        carry = {c.feed: all_gather_rows(carry[c.feed], c.batch_axis, self.dist.world) for c in graph.carry}
        self._saved_step = step
        if not self.dist.is_main:
            return
        names = list(self.programs.persistable_shapes())

        def write_files(directory: Path) -> None:
            save_variables(directory, names)
            self.job.write_model_files(directory)

        state = {"step": step, "tokens": tokens, "reader": reader_state, **self._run_shape()}
        path = self.checkpoints.save(step, write_files, state, carry)
        log.write(f"saved checkpoint {path}")

    def _evaluate(self, step: int, log: ProgressLog) -> dict:
        if not self.dist.is_main:
            return {}
        metrics = self.job.evaluate(self.exe)
        log.write(f"eval at step {step} | {self.job.describe_metrics(metrics)}",
                  {"step": step, "eval": metrics})
        return metrics
