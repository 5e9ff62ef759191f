"""The README's benchmark chart: every ratio that has a target, from the benchmarks' `--json` files.

    python bench/elmo_train.py --json results/elmo_train.json   # ... one file per benchmark
    python bench/chart.py results/*.json --output docs/bench.png

One bar per ratio (ours ÷ the reference's speed; above 1 we are faster), a
tick at its target, and the line at 1 (as fast as the reference). The CPU
model the figures came from is in the title: ratios move with the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def read(paths: list[str]) -> list[tuple[str, float, float, str]]:
    """(label, ratio, target, cpu) for every ratio with a target, in the files' order."""
    rows = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        for label, ratio in data["ratios"].items():
            if ratio.get("target"):
                rows.append((ratio.get("title", f"{data['benchmark']}: {label}"), ratio["value"], ratio["target"],
                             f"{data['cpu']}, {data['threads']} threads, {data.get('date', '')}"))
    if not rows:
        raise SystemExit("no ratio with a target in those files (write them with a benchmark's --json)")
    return rows


def draw(rows):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 0.45 * len(rows) + 1.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    y = list(range(len(rows)))[::-1]
    values, targets = [r[1] for r in rows], [r[2] for r in rows]
    colors = ["tab:green" if v >= t else "tab:orange" for v, t in zip(values, targets)]
    ax.barh(y, values, color=colors, height=0.6, label="ours ÷ reference")
    ax.scatter(targets, y, marker="|", s=400, color="black", label="target", zorder=3)
    ax.axvline(1.0, color="gray", linestyle=":", label="as fast as the reference")
    for yi, v in zip(y, values):
        ax.text(v, yi, f" {v:.2f}", va="center", fontsize="small")
    ax.set_yticks(y, [r[0] for r in rows], fontsize="small")
    ax.set_xlabel("speed ratio (green: target met)")
    ax.set_xlim(0, max(values + targets) * 1.12)  # room for the value labels
    # Below the axes: inside, it covered the longest bars.
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize="small")
    ax.set_title(f"Benchmarks on {', '.join(sorted({r[3] for r in rows}))}", fontsize="medium")
    return fig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", help="JSON files written by the benchmarks' --json")
    p.add_argument("--output", default="docs/bench.png")
    a = p.parse_args()
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    draw(read(a.files)).savefig(a.output)
    print(f"wrote {a.output}")


if __name__ == "__main__":
    main()
