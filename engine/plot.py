"""Training curves: a run's `train_log.jsonl` drawn as a PNG, and mirrored to VisualDL.

    python -m engine.plot RUN_DIR [RUN_DIR ...] [--output FILE.png]

Three panels against the step: the training loss; the perplexity (log scale:
training as a line, dev evaluations as points, the unigram perplexity as a
dotted reference) or, for a task, its dev metrics (EM and F1, or F1); and
tokens/s. Several runs are overlaid under their directory names. Every
training run draws `RUN_DIR/curves.png` at each evaluation and at the end.
Drawing needs matplotlib (the `plot` extra); `runtime.visualdl: true` also
logs the same scalars for VisualDL (the `visualdl` extra).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ConfigError, DataError

LOG_FILE, CURVES_FILE = "train_log.jsonl", "curves.png"
SIZE_INCHES, DPI = (8.0, 9.0), 100  # an 800 × 900 PNG


@dataclass
class Curves:
    """What one run logged: per reporting step its mean loss, perplexity and tokens/s, and its evaluations."""

    name: str
    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    ppl: list[float] = field(default_factory=list)  # empty for jobs that log none
    tokens_per_s: list[float] = field(default_factory=list)
    evals: list[tuple[int, dict]] = field(default_factory=list)

    def dev_metrics(self) -> list[str]:
        """The evaluation figures worth a curve: perplexity, else EM and F1, else F1."""
        first = self.evals[0][1] if self.evals else {}
        for keys in (["ppl"], ["exact_match", "f1"], ["f1"]):
            if all(k in first for k in keys):
                return keys
        return []


def read_log(run: str | Path) -> Curves:
    """A run directory's (or a log file's) curves; a missing, malformed or empty log is a DataError."""
    path = Path(run)
    path = path / LOG_FILE if path.is_dir() else path
    if not path.is_file():
        raise DataError(f"{run}: no {LOG_FILE} (not a run directory?)")
    curves = Curves(path.parent.name)
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            step = int(record["step"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise DataError(f"{path}:{lineno}: not a training-log record (JSON with a 'step')") from None
        if isinstance(record.get("eval"), dict):
            curves.evals.append((step, record["eval"]))
        elif "loss" in record:
            curves.steps.append(step)
            curves.loss.append(float(record["loss"]))
            curves.tokens_per_s.append(float(record.get("tokens_per_s", math.nan)))
            if "ppl" in record:
                curves.ppl.append(float(record["ppl"]))
    if not curves.steps and not curves.evals:
        raise DataError(f"{path}: no steps or evaluations logged yet")
    return curves


def draw(runs: list[Curves]):
    """The three-panel figure of `runs` (a matplotlib `Figure`, no display needed)."""
    Figure = _matplotlib_figure()
    fig = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    loss_ax, metric_ax, speed_ax = fig.subplots(3, 1, sharex=True)
    for k, run in enumerate(runs):
        color = f"C{k}"
        loss_ax.plot(run.steps, run.loss, color=color, label=run.name)
        speed_ax.plot(run.steps, run.tokens_per_s, color=color, label=run.name)
        _metric_curves(metric_ax, run, color)
    loss_ax.set_ylabel("training loss")
    speed_ax.set_ylabel("tokens/s")
    speed_ax.set_xlabel("step")
    for ax in (loss_ax, metric_ax, speed_ax):
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize="small")
    fig.suptitle(", ".join(run.name for run in runs))
    return fig


def _metric_curves(ax, run: Curves, color: str) -> None:
    metrics = run.dev_metrics()
    if run.ppl or metrics == ["ppl"]:
        ax.set_yscale("log")
        ax.set_ylabel("perplexity")
        if run.ppl:
            ax.plot(run.steps, run.ppl, color=color, alpha=0.6, label=f"{run.name} train")
        if run.evals and metrics == ["ppl"]:
            ax.plot([s for s, _ in run.evals], [e["ppl"] for _, e in run.evals], "o", color=color,
                    label=f"{run.name} dev")
            unigram = [e["unigram_ppl"] for _, e in run.evals if "unigram_ppl" in e]
            if unigram:
                ax.axhline(unigram[-1], color=color, linestyle=":", label=f"{run.name} unigram")
        return
    ax.set_ylabel("dev " + " / ".join(metrics) if metrics else "dev")
    for metric, style in zip(metrics, ("o-", "s--")):
        ax.plot([s for s, _ in run.evals], [e[metric] for _, e in run.evals], style, color=color,
                label=f"{run.name} {metric}")


def save_curves(runs: list[str | Path], output: str | Path) -> Path:
    """Draws the runs' curves into the PNG `output` (written whole or not at all)."""
    from engine.atomic import atomic_file

    fig = draw([read_log(run) for run in runs])
    output = Path(output)
    with atomic_file(output) as partial:
        fig.savefig(partial, format="png")
    return output


def _matplotlib_figure():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("drawing curves needs matplotlib: pip install -e '.[plot]'") from None
    return Figure


class VisualDLWriter:
    """Logs the training log's scalars for VisualDL (`runtime.visualdl: true`): `train/<name>` per
    reported step, `dev/<name>` per evaluation, under `RUN_DIR/visualdl`."""

    def __init__(self, run_dir: str | Path):
        self._writer = self.require()(logdir=str(Path(run_dir) / "visualdl"))

    @staticmethod
    def require():
        """VisualDL's `LogWriter`; one ConfigError naming the extra when it is not installed."""
        try:
            from visualdl import LogWriter
        except ImportError:
            raise ConfigError("runtime.visualdl needs VisualDL: pip install -e '.[visualdl]'") from None
        return LogWriter

    def __call__(self, record: dict) -> None:
        step = int(record["step"])
        scalars = {f"dev/{k}": v for k, v in record["eval"].items()} if "eval" in record else {
            f"train/{k}": v for k, v in record.items() if k not in ("step", "elapsed_s", "eta_s")}
        for tag, value in scalars.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self._writer.add_scalar(tag=tag, value=float(value), step=step)

    def close(self) -> None:
        self._writer.close()


def main(argv: list[str] | None = None) -> Path:
    """`python -m engine.plot`: draws one or several runs' curves into one PNG."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories (train.output_dir) or train_log.jsonl files")
    parser.add_argument("--output", help=f"PNG to write (default: RUN_DIR/{CURVES_FILE} for one run, "
                                         "curves.png here for several)")
    args = parser.parse_args(argv)
    default = Path(args.runs[0]) / CURVES_FILE if len(args.runs) == 1 and Path(args.runs[0]).is_dir() else CURVES_FILE
    output = save_curves(args.runs, args.output or default)
    print(f"wrote {output}")
    return output


if __name__ == "__main__":
    from engine.command import run

    run(main)
