"""The training command every job shares.

    python -m engine --config configs/JOB.yaml [-o section.key=value ...] [--resume | --resume-from DIR] [--show]

The recipe's `job:` key names the job class (`bilm.pretrain.ElmoPretraining`,
`tagger.job.TaggerTraining`, ...): the registry is the recipes themselves, so
a new job is a class and a YAML, with nothing to register. `sh run.sh JOB`
runs this with `configs/JOB.yaml`.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
from pathlib import Path

from engine.errors import ConfigError
from engine.signals import RunStopped


def config_parser(description: str, default_config: str | None = None) -> argparse.ArgumentParser:
    """`--config FILE`, repeated `-o section.key=value`, `--resume`, `--show`."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=default_config, required=default_config is None,
                        help="the job's recipe (YAML)")
    parser.add_argument("-o", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. -o train.max_steps=100 (repeatable)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest intact checkpoint in train.output_dir (a damaged newer "
                             "one is noted and set aside as step-N.damaged)")
    parser.add_argument("--resume-from", metavar="DIR",
                        help="continue from this checkpoint directory (checked against its manifest first)")
    parser.add_argument("--init-from", metavar="DIR",
                        help="start a new run from the variables of DIR (= -o train.init_from=DIR)")
    parser.add_argument("--show", nargs="?", const="text", choices=("text", "markdown"),
                        help="print every config key with its default, this run's value and its meaning; "
                             "do not train")
    return parser


def job_class(recipe: str | Path) -> type:
    """The job class a recipe's `job:` key names (following `base:`)."""
    from engine.config import JOB_KEY, read_recipe

    name = read_recipe(recipe).get(JOB_KEY)
    if not isinstance(name, str) or "." not in name:
        raise ConfigError(f"{recipe}: '{JOB_KEY}' must name a job class, e.g. bilm.pretrain.ElmoPretraining; "
                          f"got {name!r}")
    module, _, attr = name.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        raise ConfigError(f"{recipe}: job '{name}' not found") from None
    if not hasattr(found, "config_class"):
        raise ConfigError(f"{recipe}: '{name}' is not a job (no config_class)")
    return found


def train(argv: list[str] | None = None, default_config: str | None = None) -> dict:
    """The whole training command: recipe, job, engine, fit. Returns the final metrics."""
    from engine.config import JOB_KEY, describe, dump_yaml, key_table, load_config
    from engine.runtime import dist_env_from_launcher

    args = config_parser(__doc__, default_config).parse_args(argv)
    if args.init_from:
        args.overrides.append(f"train.init_from={args.init_from}")
    cls = job_class(args.config)
    cfg = load_config(cls.config_class, args.config, args.overrides)
    if args.show:
        rows = describe(cfg, cls.config_class())
        print(key_table(rows, args.config) if args.show == "markdown" else show_text(rows), end="")
        return {}
    dist = dist_env_from_launcher()
    from engine.trainer import Trainer

    output = Path(cfg.train.output_dir)
    created = dist.is_main and not output.exists()
    trainer = None
    try:
        job = cls(cfg, dist)
        if dist.is_main:
            print(job.summary(), flush=True)
        run_config = f"{JOB_KEY}: {cls.__module__}.{cls.__name__}\n" + dump_yaml(cfg)
        trainer = Trainer(job, cfg.train, cfg.optim, cfg.runtime, dist, run_config=run_config)
        try:
            return trainer.fit(resume=args.resume, resume_from=args.resume_from)
        except RunStopped as stopped:  # saved and said so: the status tells a scheduler it was stopped
            sys.exit(stopped.exit_status)
    except BaseException:
        # A run that stops before its first step (a missing file, a typo in a path) leaves
        # nothing behind that it made: no empty output directory to trip the next try.
        if created and (trainer is None or trainer.steps_run == 0):
            shutil.rmtree(output, ignore_errors=True)
        raise


def show_text(rows) -> str:
    """`describe`'s rows for a terminal: key = value, the default when it differs, the meaning."""
    from engine.config import format_value

    lines = []
    for row in rows:
        changed = f"   (default {format_value(row.default)})" if row.value != row.default else ""
        lines.append(f"{row.key} = {format_value(row.value)}{changed}")
        if row.meaning:
            lines.append(f"    {row.meaning}")
    return "\n".join(lines) + "\n"
