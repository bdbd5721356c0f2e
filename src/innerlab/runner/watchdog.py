"""A watchdog for the XLA CPU deadlock.

jaxlib 0.10.2's CPU runtime can deadlock while executing a vmapped training step: every
thread waits, the process uses no CPU, forever (../shared/NOTES.md; `innerlab._xla` sets the
scheduler flag that makes it rare, but we saw it once more on 2026-11-24 with the flag set,
on an 8-seed MLP run). Training on a CPU always burns CPU, so "a job in flight and almost no
CPU time for `window` seconds" is the deadlock, not slow work. Jobs are pure and every
finished job is on disk, so the cure is to start the process again with `--resume`: only
the job in flight is lost.

The watchdog only watches; what to do on a stall is the caller's `on_stall` (the CLI
re-executes itself with --resume; library callers get nothing unless they ask).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable

# Seconds without CPU use that count as a stall; INNERLAB_STALL_WINDOW_S overrides (tests).
DEFAULT_WINDOW_S = 180.0


class StallWatchdog:
    """Calls `on_stall()` once if, while `busy`, the process used less than `min_cpu_s` of CPU
    time over the last `window_s` seconds. `cpu_time` and `clock` are injectable for tests."""

    def __init__(self, on_stall: Callable[[], None], window_s: float | None = None, min_cpu_s: float = 1.0,
                 poll_s: float | None = None, cpu_time: Callable[[], float] = time.process_time,
                 clock: Callable[[], float] = time.monotonic):
        if window_s is None:
            window_s = float(os.environ.get("INNERLAB_STALL_WINDOW_S", DEFAULT_WINDOW_S))
        poll_s = min(5.0, window_s / 4) if poll_s is None else poll_s
        self.on_stall, self.window_s, self.min_cpu_s, self.poll_s = on_stall, window_s, min_cpu_s, poll_s
        self.cpu_time, self.clock = cpu_time, clock
        self.busy = False
        self.fired = False
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        self._samples.clear()  # a new job starts a new window

    def check(self) -> bool:
        """Take one sample; True (and on_stall called) if the process has stalled."""
        now, cpu = self.clock(), self.cpu_time()
        if not self.busy or self.fired:
            self._samples.clear()
            return False
        self._samples.append((now, cpu))
        while len(self._samples) > 1 and now - self._samples[1][0] >= self.window_s:
            self._samples.pop(0)
        start, start_cpu = self._samples[0]
        if now - start >= self.window_s and cpu - start_cpu < self.min_cpu_s:
            self.fired = True
            self.on_stall()
            return True
        return False

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.check()

    def __enter__(self) -> "StallWatchdog":
        self._thread = threading.Thread(target=self._loop, name="innerlab-watchdog", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> bool:
        self._stop.set()
        return False
