"""`python -m engine.verify DIR [DIR ...]`: checks checkpoints against their manifests.

DIR is a checkpoint (`output/elmo/checkpoints/step-00001200`), a run's
`checkpoints/` directory, or a run's output directory (every checkpoint in it).
Prints one line per checkpoint, `intact` or what is wrong, and exits with 1
when any is damaged; nothing is changed (a resume sets damaged ones aside).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.checkpoint import MANIFEST_FILE, CheckpointManager, verify
from engine.errors import ConfigError


def checkpoints_in(path: Path) -> list[Path]:
    """The checkpoints `path` names: itself, or those under it (or under its `checkpoints/`)."""
    for root in (path, path / "checkpoints"):
        found = CheckpointManager(root).complete()
        if found:
            return found
    if path.is_dir() and any(path.iterdir()):
        return [path]  # one checkpoint, complete or not: `verify` says which
    raise ConfigError(f"{path}: no checkpoint there (a step-N directory, a checkpoints/ directory or a run's "
                      "output directory)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="DIR")
    args = parser.parse_args(argv)
    damaged = 0
    for checkpoint in [c for p in args.paths for c in checkpoints_in(Path(p))]:
        problems = verify(checkpoint)
        if problems:
            damaged += 1
            print(f"{checkpoint}: damaged: {'; '.join(problems)}")
        elif (checkpoint / MANIFEST_FILE).is_file():
            files = sum(1 for p in checkpoint.rglob("*") if p.is_file())
            size = sum(p.stat().st_size for p in checkpoint.rglob("*") if p.is_file())
            print(f"{checkpoint}: intact ({files} files, {size / 1e6:,.1f} MB, checked against {MANIFEST_FILE})")
        else:
            print(f"{checkpoint}: complete, unchecked (written before checkpoints had a manifest)")
    return 1 if damaged else 0


if __name__ == "__main__":
    from engine.command import run

    run(lambda: sys.exit(main()))
