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
