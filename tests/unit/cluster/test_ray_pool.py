"""The driver's stream of work to Ray actors, against a fake Ray: order, bounds, dead workers,
default worker counts."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from annotator.cluster._ray_pool import (
    ClusterError,
    ProposeWorker,
    WorkerFailed,
    stream_outcomes,
    worker_options,
)

exceptions = pytest.importorskip("ray.exceptions")


class FakeRay:
    """``wait`` hands back the newest ref first (results arrive out of order); ``get`` raises
    ``RayActorError`` for refs of actors in ``dead``."""

    def __init__(self, resources: dict | None = None) -> None:
        self.dead: set = set()
        self.max_flying = 0
        self.resources = resources or {"CPU": 2.0}

    def wait(self, refs: list, num_returns: int) -> tuple[list, list]:
        self.max_flying = max(self.max_flying, len(refs))
        return refs[-num_returns:], refs[:-num_returns]

    def get(self, ref: tuple) -> object:
        actor, path = ref
        if actor in self.dead:
            raise exceptions.RayActorError()
        return f"{actor.name}:{Path(path).name}"

    def cluster_resources(self) -> dict:
        return self.resources


class FakeActor:
    def __init__(self, name: str) -> None:
        self.name = name
        self.propose = SimpleNamespace(remote=lambda path: (self, path))


def _pending(count: int) -> list[tuple[int, Path]]:
    return [(i * 2, Path(f"/images/{i}.png")) for i in range(count)]  # indices with gaps


def test_outcomes_come_back_in_input_order_with_a_bounded_queue() -> None:
    ray, actors = FakeRay(), [FakeActor("a"), FakeActor("b")]
    outcomes = list(stream_outcomes(ray, actors, _pending(10), per_worker=2))
    assert [index for index, _ in outcomes] == [i * 2 for i in range(10)]
    assert {outcome.split(":")[1] for _, outcome in outcomes} == {f"{i}.png" for i in range(10)}
    assert {outcome.split(":")[0] for _, outcome in outcomes} == {"a", "b"}  # both worked
    assert ray.max_flying <= 4


def test_a_dead_workers_images_go_to_the_others() -> None:
    ray, actors = FakeRay(), [FakeActor("a"), FakeActor("b")]
    ray.dead.add(actors[0])
    outcomes = list(stream_outcomes(ray, actors, _pending(6)))
    assert [index for index, _ in outcomes] == [0, 2, 4, 6, 8, 10]
    assert all(outcome.startswith("b:") for _, outcome in outcomes)


def test_when_every_worker_dies_the_run_stops_with_a_typed_error() -> None:
    ray, actors = FakeRay(), [FakeActor("a")]
    ray.dead.add(actors[0])
    with pytest.raises(ClusterError, match="every Ray worker died"):
        list(stream_outcomes(ray, actors, _pending(3)))


def test_a_worker_error_stops_the_run_with_its_message() -> None:
    ray, actors = FakeRay(), [FakeActor("a")]
    ray.get = lambda ref: WorkerFailed("a worker could not start: no weights")
    with pytest.raises(ClusterError, match="no weights"):
        list(stream_outcomes(ray, actors, _pending(2)))


@pytest.mark.parametrize(
    ("resources", "workers", "count", "cpus", "gpus"),
    [
        ({"CPU": 16.0, "GPU": 4.0}, None, 4, 4.0, 1.0),  # one per GPU, a GPU each
        ({"CPU": 16.0}, None, 4, 4.0, 0),  # one per 4 CPUs
        ({"CPU": 2.0}, None, 1, 2.0, 0),
        ({"CPU": 2.0}, 4, 4, 0.5, 0),  # more workers than CPUs: fractions, all start
        ({"CPU": 8.0, "GPU": 2.0}, 4, 4, 2.0, 0.5),
    ],
)
def test_default_and_explicit_worker_counts(
    resources: dict, workers: int | None, count: int, cpus: float, gpus: float
) -> None:
    found, options = worker_options(FakeRay(resources), workers, forward_env=False)
    assert (found, options["num_cpus"], options["num_gpus"]) == (count, cpus, gpus)
    assert options["max_restarts"] >= 1 and options["max_task_retries"] >= 1
    assert "runtime_env" not in options


def test_workers_on_a_remote_cluster_get_the_cache_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANNOTATOR_CACHE_DIR", "/shared/weights")
    monkeypatch.setenv("UNRELATED_SECRET", "x")
    _, options = worker_options(FakeRay(), 1, forward_env=True)
    env = options["runtime_env"]["env_vars"]
    assert env["ANNOTATOR_CACHE_DIR"] == "/shared/weights" and "UNRELATED_SECRET" not in env


def test_a_worker_that_cannot_build_reports_why() -> None:
    from annotator.errors import AnnotatorError

    class NoWeights:
        def build(self):  # noqa: ANN202
            raise AnnotatorError("weights ViT-B-16:openai are not downloaded")

    outcome = ProposeWorker(NoWeights()).propose("/images/a.png")
    assert outcome == WorkerFailed(
        "a worker could not start: weights ViT-B-16:openai are not downloaded"
    )
