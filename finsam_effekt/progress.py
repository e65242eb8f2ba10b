"""Progress within a long stage: steps done of a known total and the time left, for the console and run.log.

A stage that works through batches (history features in batches of pairs, the balance table column by column,
the propensity model's Newton iterations) reports each step to a :class:`Tracker`; whoever listens (the CLI's
status line, through :func:`listening`) gets a :class:`Progress` with the time left estimated from the pace so
far, ``elapsed · (total − done) / done``. ``run.log`` gets a line at most every :data:`LOG_EVERY_SECONDS`. The
messages name steps (batches, columns, iterations), never numbers of persons, so nothing in them needs disclosure
control.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger("finsam_effekt.run")

#: Seconds between two progress lines of the same tracker in ``run.log``.
LOG_EVERY_SECONDS: float = 30.0

_listeners: list[Callable[[Progress], None]] = []


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` steps of ``what`` (``total`` None: unknown), after ``elapsed`` seconds."""

    what: str
    done: int
    total: int | None
    elapsed: float

    @property
    def seconds_left(self) -> float | None:
        """``elapsed · (total − done) / done``, or None without a total or before the first step."""
        if self.total is None or self.done <= 0:
            return None
        return self.elapsed * (self.total - self.done) / self.done

    def text(self) -> str:
        """``history features: batch 3 of 11, about 2 min left``."""
        steps = f"{self.done} of {self.total}" if self.total is not None else f"{self.done}"
        left = self.seconds_left
        if left is None or self.done >= (self.total or 0):
            return f"{self.what}: {steps}"
        about = f"{left:.0f} s" if left < 90 else f"{left / 60:.0f} min"
        return f"{self.what}: {steps}, about {about} left"


class Tracker:
    """Counts the steps of one long piece of work and tells the listeners (see the module docstring)."""

    def __init__(self, what: str, total: int | None = None, clock: Callable[[], float] = time.perf_counter):
        self.what, self.total, self.done = what, total, 0
        self._clock = clock
        self._t0 = clock()
        self._logged = self._t0

    def step(self, n: int = 1) -> Progress:
        """``n`` more steps done; returns the progress sent to the listeners."""
        self.done += n
        now = self._clock()
        p = Progress(self.what, self.done, self.total, now - self._t0)
        for listener in list(_listeners):
            listener(p)
        if now - self._logged >= LOG_EVERY_SECONDS:
            self._logged = now
            log.info("progress: %s", p.text())
        return p


def track(what: str, total: int | None = None) -> Tracker:
    """A :class:`Tracker` for ``total`` steps of ``what`` (e.g. ``track("history features: batch", 11)``)."""
    return Tracker(what, total)


@contextmanager
def listening(callback: Callable[[Progress], None]) -> Iterator[None]:
    """Send every :class:`Progress` of the trackers to ``callback`` while the block runs."""
    _listeners.append(callback)
    try:
        yield
    finally:
        _listeners.remove(callback)
