"""Stopping a run on SIGTERM or SIGINT at a step boundary, saved and resumable.

Schedulers (SLURM, Kubernetes, spot instances) send SIGTERM and kill a grace
period later; `paddle.distributed.launch` passes a SIGTERM or SIGINT it
receives to every rank's process group as SIGTERM and kills them 30 s later.
`StopSignals` only records the signal; the trainer looks after each step,
every rank agreeing on the step (`Trainer`), then saves and raises
`RunStopped`. While it saves, a repeated SIGTERM is ignored (the launcher
sends three, 0.2 s apart, then SIGKILL after its grace period), and a
second Ctrl-C ends the process at once; either way the atomic save leaves
the previous checkpoint intact. The reader processes are out of the
trainer's process group, so a signal meant for the run does not reach them:
they end with their consumer (`reader.prefetch`).
"""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunStopped(Exception):
    """A run stopped on a signal after saving its checkpoint; the process exits with `exit_status`."""

    def __init__(self, signum: int, step: int):
        self.signum, self.step = signum, step
        self.exit_status = 128 + signum  # a shell's status for a process ended by that signal
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; resume with --resume")


class StopSignals:
    """While active (a context manager), SIGTERM and SIGINT are recorded in `received`, not acted on."""

    def __init__(self):
        self.received: int | None = None
        self._saved: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for signum in SIGNALS:
                self._saved[signum] = signal.signal(signum, self._record)
        return self

    def __exit__(self, *exc):
        self.restore()

    def _record(self, signum, frame) -> None:
        if self.received is None:
            self.received = signum

    def restore(self, *signums: int) -> None:
        """The handlers from before for `signums` (default: both), so that such a signal acts at once."""
        for signum in signums or list(self._saved):
            if signum in self._saved:
                signal.signal(signum, self._saved.pop(signum))
