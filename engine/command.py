"""What every command line does around its work: Paddle kept quiet, a user's mistake in one line, verbs.

`python -m bilm VERB`, `python -m luke_static VERB`, `python -m tagger VERB`
and `python -m engine` all start here: `quiet()` first (before anything
imports Paddle), then `dispatch` picks the verb's function, which `run` calls
so that a `PipelineError` (bad input, a config mistake) prints one line and
exits with status 2 instead of a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Callable

from engine.errors import PipelineError

# Paddle's import warns that ccache (a compiler cache for custom C++ ops) is missing: users compile nothing.
_CCACHE_NOTICE = "No ccache found"


def quiet() -> None:
    """Hides Paddle's start-up chatter in this process and in the processes it starts.

    Paddle's C++ side logs through glog (`New Executor is Running`, PIR
    notices), which reads `GLOG_minloglevel` once, when Paddle is imported: so
    this must run first. Warnings and errors (level 2 and up) still show. A
    value the user set is kept.
    """
    os.environ.setdefault("GLOG_minloglevel", "2")
    ignore = f"ignore:{_CCACHE_NOTICE}:UserWarning"
    inherited = os.environ.get("PYTHONWARNINGS", "")
    if ignore not in inherited.split(","):  # spawned workers (readers, dump processes) import Paddle too
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [inherited, ignore]))
    warnings.filterwarnings("ignore", message=_CCACHE_NOTICE, category=UserWarning)


def run(main: Callable[..., object], *args) -> None:
    """Calls `main(*args)`; a user-input problem prints `error: …` on one line and exits with status 2."""
    quiet()
    try:
        main(*args)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def dispatch(program: str, verbs: dict[str, tuple[str, str]], argv: list[str] | None = None) -> None:
    """`python -m PACKAGE VERB [flags]`: runs the function `verbs[VERB]` names (`"module:function"`, with
    a one-line summary) on the remaining flags. Verbs are written with hyphens (`import-fluid` for the
    key `import_fluid`); without a verb, or with `-h`, the verbs are listed."""
    argv = list(sys.argv[1:] if argv is None else argv)
    width = max(map(len, verbs))
    listing = "\n".join(f"  {name.replace('_', '-'):<{width}}  {summary}" for name, (_, summary) in verbs.items())
    usage = f"usage: python -m {program} VERB [--help] [flags]\n\nverbs:\n{listing}\n"
    if not argv or argv[0] in ("-h", "--help"):
        print(usage, end="")
        sys.exit(0 if argv else 2)
    verb = argv[0].replace("-", "_")
    if verb not in verbs:
        names = ", ".join(name.replace("_", "-") for name in verbs)
        print(f"error: python -m {program}: unknown verb '{argv[0]}' (verbs: {names})", file=sys.stderr)
        sys.exit(2)
    module, function = verbs[verb][0].split(":")
    sys.argv[0] = f"python -m {program} {verb.replace('_', '-')}"  # what argparse shows in usage lines
    run(getattr(importlib.import_module(module), function), argv[1:])
