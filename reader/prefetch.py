"""Runs a batch stream in a worker process, ahead of the trainer.

The trainer only ever takes finished batches from a bounded queue; the worker
reads, encodes, batches and samples while the executor computes. Errors in
the worker (a malformed line, say) are re-raised in the trainer unchanged.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator

_END = "__end__"
_EXIT_GRACE = 30.0  # seconds a worker that sent its last item gets to exit by itself


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc
        self.trace = traceback.format_exc()


class Prefetcher:
    """Iterates over `factory(*args)` running in a spawned process, `capacity` items ahead.

    Use as a context manager (or call `close`) so the worker ends with the run.
    `wait_seconds` accumulates the time the consumer spent blocked on the
    queue: the share of a run spent waiting for data.
    """

    def __init__(self, factory: Callable[..., Iterator], *args, capacity: int = 16):
        ctx = multiprocessing.get_context("spawn")
        self._queue = ctx.Queue(maxsize=max(1, capacity))
        # Not a daemon: the worker may start its own shard-encoding processes.
        self._process = ctx.Process(target=_produce, args=(factory, args, self._queue, os.getpid()),
                                    name="reader", daemon=False)
        self._process.start()
        self._done = False
        self.wait_seconds = 0.0

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        start = time.perf_counter()
        while True:
            try:
                item = self._queue.get(timeout=1.0)
                break
            except queue.Empty:
                if not self._process.is_alive():
                    self._done = True
                    raise RuntimeError(f"reader process died (exit code {self._process.exitcode})") from None
        self.wait_seconds += time.perf_counter() - start
        if isinstance(item, _Failure):
            self._finish()
            item.exc.add_note(f"in the reader process:\n{item.trace}")
            raise item.exc
        if isinstance(item, str) and item == _END:
            self._finish()
            raise StopIteration
        return item

    def _finish(self) -> None:
        """After its last item the worker exits by itself, shutting its own processes down: let it, rather
        than interrupt that clean-up (which would leave their semaphores to the resource tracker)."""
        self._process.join(timeout=_EXIT_GRACE)
        self.close()

    def close(self) -> None:
        if self._done and not self._process.is_alive():
            return
        self._done = True
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._queue.cancel_join_thread()
        self._queue.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _put(out, item, parent_pid: int) -> bool:
    """Puts `item` unless the consumer has gone; returns whether it was delivered."""
    while True:
        try:
            out.put(item, timeout=1.0)
            return True
        except queue.Full:
            if os.getppid() != parent_pid:
                return False


def _produce(factory, args, out, parent_pid: int) -> None:
    # `close` terminates the worker: exit through the stream's `finally`
    # blocks so its own encoding processes are shut down too.
    def stop(*_):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not interrupt the clean-up
        out.cancel_join_thread()  # undelivered batches must not hold up the exit
        sys.exit(0)

    def consumer_gone():
        # Batches still buffered for a reader that no longer exists must not
        # hold up this process's exit (its feeder thread would block forever
        # on the full pipe, and an orphan keeps its parent's output pipes open).
        out.cancel_join_thread()

    signal.signal(signal.SIGTERM, stop)
    # Out of the trainer's process group: a SIGTERM or Ctrl-C meant for the run (a scheduler's, a
    # launcher's, a terminal's) is the trainer's to act on at a step boundary (`engine.signals`), and it
    # still needs its batches until then; this process ends with its consumer either way.
    os.setpgrp()
    try:
        for item in factory(*args):
            if not _put(out, item, parent_pid):
                return consumer_gone()
        if not _put(out, _END, parent_pid):
            consumer_gone()
    except SystemExit:
        return
    except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer
        if not _put(out, _Failure(exc), parent_pid):
            consumer_gone()
    finally:
        # The stream's own processes are shut down by now; what is left is the interpreter's exit.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
