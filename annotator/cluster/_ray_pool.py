"""A pool of long-lived Ray actors, each owning one segmenter, fed image paths in a bounded stream.

Ray is imported inside the functions only (it is the optional ``cluster`` extra). The actor body
:class:`ProposeWorker` is a plain class: ``ray.remote`` wraps it when a pool starts.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from annotator.errors import AnnotatorError

INSTALL_HINT = "pip install 'annotator[cluster]'"

#: Fault-injection seam (tests, drills): when this environment variable names an existing file,
#: the first worker that claims the file (renames it away) exits hard before proposing its image,
#: as a crashed or preempted node would. Unset, or naming no file, it does nothing.
KILL_ONCE_ENV = "ANNOTATOR_FAULT_KILL_WORKER_ONCE"

#: Environment variables handed to every worker of a cluster started elsewhere (caches, config,
#: offline switches), so they see the same weights cache as the driver. A local Ray inherits the
#: environment of the process that started it.
_FORWARDED_ENV = ("ANNOTATOR_", "HF_", "TORCH_HOME", "XDG_CACHE_HOME", KILL_ONCE_ENV)

#: Ray restarts a dead worker and reruns its task this many times before the pool gives up on it.
MAX_RETRIES = 3


class RayUnavailableError(AnnotatorError):
    """``--ray`` was asked for but Ray is not installed."""

    def __init__(self) -> None:
        super().__init__(
            f"--ray needs Ray, which is not installed; install it with: {INSTALL_HINT}"
        )


class ClusterError(AnnotatorError):
    """The Ray cluster could not be reached, or its workers could not propose."""


class WorkerSpec(Protocol):
    """Picklable recipe a worker runs once: ``build()`` -> ``compute(path) -> outcome``."""

    def build(self) -> Callable[[Path], Any]: ...


@dataclass(frozen=True)
class WorkerFailed:
    """A worker could not start or propose (an ``AnnotatorError`` message, e.g. no weights)."""

    message: str


def require_ray() -> ModuleType:
    """The ``ray`` module, or :class:`RayUnavailableError` naming the extra to install."""
    try:
        import ray
    except ImportError as error:
        raise RayUnavailableError() from error
    return ray


class ProposeWorker:
    """The body of one Ray actor: builds its segmenter once, then proposes one path per call."""

    def __init__(self, spec: WorkerSpec) -> None:
        self._error: str | None = None
        try:
            self._compute: Callable[[Path], Any] | None = spec.build()
        except AnnotatorError as error:
            self._compute, self._error = None, str(error)

    def propose(self, path: str) -> Any:
        """The outcome of ``spec``'s ``compute`` for ``path``, or :class:`WorkerFailed`."""
        _inject_fault()
        if self._compute is None:
            return WorkerFailed(f"a worker could not start: {self._error}")
        try:
            return self._compute(Path(path))
        except AnnotatorError as error:
            return WorkerFailed(f"a worker failed on {path}: {error}")


def _inject_fault() -> None:
    flag = os.environ.get(KILL_ONCE_ENV)
    if not flag:
        return
    try:
        os.rename(flag, f"{flag}.claimed-by-{os.getpid()}")
    except OSError:
        return
    os._exit(1)


@contextmanager
def ray_session(address: str) -> Iterator[ModuleType]:
    """Ray, connected: reuse a running session, else start a local one (``"local"``) or join a
    cluster (``"auto"`` or an address); a session started here is shut down on exit."""
    ray = require_ray()
    started = False
    if not ray.is_initialized():
        _connect(ray, address)
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _connect(ray: ModuleType, address: str) -> None:
    try:
        ray.init(
            address=address, include_dashboard=False, logging_level=logging.WARNING,
            configure_logging=True,
        )  # fmt: skip
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ClusterError(
            f"could not reach a Ray cluster at {address!r} ({error}); start one with "
            "'ray start --head' or use --ray local"
        ) from error


def worker_options(
    ray: ModuleType, workers: int | None, forward_env: bool = True
) -> tuple[int, dict]:
    """``(count, actor options)``: by default one worker per GPU of the cluster (a GPU each),
    else one per 4 CPUs (at least one); CPUs and GPUs are shared out evenly among them.
    ``forward_env``: hand the driver's cache/config variables to the workers (a cluster started
    elsewhere); a local Ray already has the driver's environment (and starts workers faster)."""
    resources = ray.cluster_resources()
    gpus, cpus = float(resources.get("GPU", 0)), float(resources.get("CPU", 1))
    count = workers or (int(gpus) if gpus >= 1 else max(1, int(cpus) // 4))
    options = {
        "num_cpus": _share(cpus, count),
        "num_gpus": min(1.0, gpus / count) if gpus else 0,
        "max_restarts": MAX_RETRIES,
        "max_task_retries": MAX_RETRIES,
    }
    if forward_env:
        options["runtime_env"] = {"env_vars": _forwarded_env()}
    return count, options


def _share(total: float, count: int) -> float:
    """Whole units each when there are enough, else an even fraction (so every actor starts)."""
    return float(max(1, int(total) // count)) if count <= total else total / count


def _forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(_FORWARDED_ENV)}


def start_workers(
    ray: ModuleType, spec: WorkerSpec, workers: int | None, forward_env: bool = True
) -> list[Any]:
    """Start the actors (each builds its segmenter from ``spec`` once)."""
    count, options = worker_options(ray, workers, forward_env)
    actor = ray.remote(ProposeWorker).options(**options)
    return [actor.remote(spec) for _ in range(count)]


def stream_outcomes(
    ray: ModuleType, actors: list[Any], pending: Sequence[tuple[int, Path]], per_worker: int = 2
) -> Iterator[tuple[int, Any]]:
    """``(index, outcome)`` for every ``pending`` ``(index, path)``, in ``pending`` order.

    At most ``per_worker`` images per worker are in flight or waiting to be handed on, so
    neither the images nor the results of a large folder are ever all in memory."""
    stream = _Stream(ray, list(actors), deque(pending), per_worker * len(actors))
    while stream.queue or stream.flying:
        stream.fill()
        stream.collect()
        yield from stream.in_order()


class _Stream:
    """The bookkeeping of :func:`stream_outcomes` (submitted, arrived, per-actor load)."""

    def __init__(self, ray: ModuleType, actors: list, queue: deque, limit: int) -> None:
        self.ray, self.queue, self.limit = ray, queue, limit
        self.load = {actor: 0 for actor in actors}
        self.flying: dict[Any, tuple[int, Path, Any, int]] = {}
        self.arrived: dict[int, Any] = {}
        self.order: deque[int] = deque()

    def fill(self) -> None:
        while self.queue and len(self.flying) + len(self.arrived) < self.limit:
            index, path = self.queue.popleft()
            self.order.append(index)
            self._submit(index, path, 0)

    def _submit(self, index: int, path: Path, attempts: int) -> None:
        if not self.load:
            raise ClusterError("every Ray worker died; see the worker logs above")
        actor = min(self.load, key=self.load.__getitem__)
        ref = actor.propose.remote(str(Path(path).absolute()))
        self.flying[ref] = (index, path, actor, attempts)
        self.load[actor] += 1

    def collect(self) -> None:
        ready, _ = self.ray.wait(list(self.flying), num_returns=1)
        for ref in ready:
            index, path, actor, attempts = self.flying.pop(ref)
            if actor in self.load:
                self.load[actor] -= 1
            outcome = self._get(ref, index, path, actor, attempts)
            if outcome is not _RESUBMITTED:
                self.arrived[index] = outcome

    def _get(self, ref: Any, index: int, path: Path, actor: Any, attempts: int) -> Any:
        from ray.exceptions import RayActorError, RayTaskError

        try:
            outcome = self.ray.get(ref)
        except RayActorError as error:
            return self._resubmit(index, path, actor, attempts, error)
        except RayTaskError as error:
            raise ClusterError(f"a worker failed on {path}: {error}") from error
        if isinstance(outcome, WorkerFailed):
            raise ClusterError(outcome.message)
        return outcome

    def _resubmit(self, index: int, path: Path, actor: Any, attempts: int, error: Exception) -> Any:
        """Ray's own restarts are spent: drop the actor, give its image to another one."""
        if attempts >= MAX_RETRIES:
            raise ClusterError(f"{path} killed its worker {attempts + 1} times: {error}")
        self.load.pop(actor, None)
        self._submit(index, path, attempts + 1)
        return _RESUBMITTED

    def in_order(self) -> Iterator[tuple[int, Any]]:
        while self.order and self.order[0] in self.arrived:
            index = self.order.popleft()
            yield index, self.arrived.pop(index)


_RESUBMITTED = object()


def ray_outcomes(spec: WorkerSpec, address: str, workers: int | None) -> Callable:
    """An ``OutcomeSource`` (:mod:`annotator.engine.resume`) computing on Ray workers."""

    def source(pending: Sequence[tuple[int, Path]]) -> Iterator[tuple[int, Any]]:
        if not pending:
            return
        with ray_session(address) as ray:
            actors = start_workers(ray, spec, workers, forward_env=address != "local")
            try:
                yield from stream_outcomes(ray, actors, pending)
            finally:
                for actor in actors:
                    ray.kill(actor)

    return source
