"""Shared pieces of the command-line entry points."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Callable

from engine.errors import PipelineError


def config_parser(description: str, default_config: str | None = None) -> argparse.ArgumentParser:
    """`--config FILE`, repeated `-o section.key=value`, `--resume`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default=default_config, help="YAML config file")
    parser.add_argument("-o", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. -o train.max_steps=100 (repeatable)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the latest complete checkpoint in train.output_dir")
    return parser


def train(argv: list[str] | None, description: str, default_config: str, config_cls: type,
          make_job: Callable, describe: Callable | None = None) -> dict:
    """The whole `python -m JOB.train` command: config, job, engine, fit.

    `make_job(cfg, dist)` builds the job; `describe(job, cfg, dist)` returns a
    line printed by rank 0 before training.
    """
    from engine.config import dump_yaml, load_config
    from engine.runtime import dist_env_from_launcher

    args = config_parser(description, default_config).parse_args(argv)
    cfg = load_config(config_cls, args.config, args.overrides)
    dist = dist_env_from_launcher()
    job = make_job(cfg, dist)
    if describe is not None and dist.is_main:
        print(describe(job, cfg, dist), flush=True)
    from engine.trainer import Trainer

    trainer = Trainer(job, cfg.train, cfg.optim, cfg.runtime, dist, run_config=dump_yaml(cfg))
    return trainer.fit(resume=args.resume)


def run(main: Callable[[], object]) -> None:
    """Runs `main`; a user-input problem prints one line and exits with status 2."""
    # Paddle's import-time notices (ccache, PIR 'place') say nothing to users.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"paddle\..*")
    try:
        main()
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
