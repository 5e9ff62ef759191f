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

from engine.errors import PipelineError, storage_error

# Paddle's notices to its own developers: at import, that ccache (a compiler cache for custom C++ ops)
# is missing; while building programs, that PIR values have no place. Users can do nothing about either.
_PADDLE_NOTICES = ("No ccache found", "Tensor do not have 'place' interface")


def quiet() -> None:
    """Hides Paddle's start-up chatter in this process and in the processes it starts.

    Paddle's C++ side logs through glog (`New Executor is Running`, PIR
    notices), which reads `GLOG_minloglevel` once, when Paddle is imported: so
    this must run first. Warnings and errors (level 2 and up) still show. A
    value the user set is kept.
    """
    os.environ.setdefault("GLOG_minloglevel", "2")
    if "paddle" not in sys.modules:
        # Paddle warns at import about any OMP_NUM_THREADS above 1; every command here sets the thread
        # count itself (runtime.threads, --threads), so the variable would not be read anyway.
        os.environ.pop("OMP_NUM_THREADS", None)
    inherited = [entry for entry in os.environ.get("PYTHONWARNINGS", "").split(",") if entry]
    for notice in _PADDLE_NOTICES:  # spawned workers (readers, dump processes) import Paddle too
        if f"ignore:{notice}:UserWarning" not in inherited:
            inherited.append(f"ignore:{notice}:UserWarning")
    os.environ["PYTHONWARNINGS"] = ",".join(inherited)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"paddle\..*")


def run(main: Callable[..., object], *args) -> None:
    """Calls `main(*args)`; a user-input problem prints `error: …` on one line and exits with status 2."""
    quiet()
    try:
        main(*args)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # a full disk, a quota, a size limit: the place is at fault, not the program
        error = storage_error(exc, exc.filename or "a file")
        if error is None:
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # the reader of our output stopped (`| head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


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
