"""The one convention for batch jobs (propose-all, export, import, retrain).

A job is a plain generator function: it ``yield``s :class:`Progress` after each step, checks the
``should_stop`` callable between steps, and ``return``s its result (which ends up in
``StopIteration.value``). The CLI drains it with a progress bar, the GUI runs it in a worker
thread; neither needs Qt in the job itself.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

ShouldStop = Callable[[], bool]
Job = Generator["Progress", None, T]


@dataclass(frozen=True)
class Progress:
    """One step of a batch job: ``done`` of ``total`` items, with a short human message."""

    done: int
    total: int
    message: str = ""
    data: Any = None

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)


def never_stop() -> bool:
    return False


def run_job(job: Job[T], on_progress: Callable[[Progress], None] | None = None) -> T:
    """Drain ``job``, passing each :class:`Progress` to ``on_progress``; return the job's result."""
    while True:
        try:
            step = next(job)
        except StopIteration as done:
            return done.value
        if on_progress is not None:
            on_progress(step)
