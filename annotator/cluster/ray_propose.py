"""Batch proposals on a Ray cluster: ``annotator propose PATH... --ray [local|auto|ADDRESS]``.

Each worker (a Ray actor, a GPU each when the cluster has them) builds one segmenter from the
driver's ``EngineConfig`` and keeps it for the whole run; the driver streams image paths to the
workers (a bounded number in flight) and writes what comes back, in input order, through the
same code as a single-process run (:func:`annotator.engine.batch.write_proposals`,
:func:`annotator.cli._propose_project.write_project_proposals`), so the PNGs, ``classes.json``,
project proposals, failures and resuming are those of ``annotator propose`` without ``--ray``.

Workers read the images and the weights themselves: on a cluster both must lie at the same paths
on every node (shared storage). A worker that dies is restarted by Ray and its image proposed
again (``max_restarts``/``max_task_retries``); past that, its images go to the other workers.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotator.cluster._ray_pool import (
    INSTALL_HINT,
    KILL_ONCE_ENV,
    ClusterError,
    RayUnavailableError,
    ray_outcomes,
    require_ray,
)
from annotator.engine.config import EngineConfig
from annotator.progress import Job, ShouldStop, never_stop

__all__ = [
    "INSTALL_HINT",
    "KILL_ONCE_ENV",
    "ClusterError",
    "FilesSpec",
    "ProjectSpec",
    "RayUnavailableError",
    "propose_files_on_ray",
    "project_job_from_args",
    "propose_project_on_ray",
    "ray_available",
    "require_ray",
]


def ray_available() -> bool:
    """True when ``import ray`` works (the ``cluster`` extra is installed)."""
    try:
        require_ray()
    except RayUnavailableError:
        return False
    return True


@dataclass(frozen=True)
class FilesSpec:
    """What a worker of :func:`propose_files_on_ray` builds: a segmenter for ``config``, asked
    for ``classes`` (``keep_segments``: hand back zegformer segments too)."""

    config: EngineConfig
    classes: tuple[str, ...]
    keep_segments: bool = False

    def build(self) -> Callable[[Path], Any]:
        from annotator.engine.batch import propose_file
        from annotator.engine.segmenter import create_segmenter

        segmenter = create_segmenter(self.config)
        return lambda path: propose_file(segmenter, path, self.classes, self.keep_segments)


@dataclass(frozen=True)
class ProjectSpec:
    """What a worker of :func:`propose_project_on_ray` builds: the project opened read-only, a
    segmenter for ``config``, the active trained version and (``use_memory``) the class memory,
    asked for ``prompts`` (the driver's classes, in display order)."""

    root: str
    sidecar: str | None
    config: EngineConfig
    use_memory: bool
    prompts: tuple[str, ...]

    def build(self) -> Callable[[Path], Any]:
        from annotator.cli._propose_project import project_adapter, propose_project_file
        from annotator.engine.segmenter import create_segmenter
        from annotator.project import Project

        project = Project.open(self.root, sidecar=self.sidecar, read_only=True)
        segmenter = create_segmenter(self.config, allow_missing_weights=True)
        adapter = project_adapter(project, segmenter, use_memory=self.use_memory)
        if not segmenter.available and adapter is None:
            raise segmenter.weights_error
        return lambda path: propose_project_file(segmenter, adapter, self.prompts, path)


def propose_files_on_ray(
    config: EngineConfig, items: Sequence[tuple[Path, Path]], classes: Sequence[str],
    out_dir: str | Path, address: str = "local", workers: int | None = None,
    should_stop: ShouldStop = never_stop, write_segments: bool = False, resume: bool = True,
) -> Job[Any]:  # fmt: skip
    """:func:`annotator.engine.batch.propose_files` on Ray workers; yields Progress as results
    arrive, returns the same ``ProposeReport``. ``address``: "local" (start Ray here), "auto"
    (join the cluster of ``ray start``) or a cluster address; ``workers``: see
    :func:`annotator.cluster._ray_pool.worker_options`."""
    from annotator.engine.batch import write_proposals

    spec = FilesSpec(_portable(config), tuple(classes), write_segments)
    source = ray_outcomes(spec, address, workers)
    return write_proposals(
        source, config, items, classes, out_dir, should_stop, write_segments, resume
    )


def propose_project_on_ray(
    project: Any, config: EngineConfig, items: Sequence[tuple[Path, Path]],
    out_dir: Path | None, into_project: bool, use_memory: bool = True,
    sidecar: str | Path | None = None, address: str = "local", workers: int | None = None,
    should_stop: ShouldStop | None = None,
) -> Job[Any]:  # fmt: skip
    """The ``--project`` run (:func:`annotator.cli._propose_project.propose_project_files`) on
    Ray workers; the driver stores results in ``project`` exactly as a single process does."""
    from annotator.cli._propose_project import write_project_proposals

    prompts = tuple(c.prompt for c in project.list_classes())
    side = None if sidecar is None else str(Path(sidecar).absolute())
    spec = ProjectSpec(str(project.root), side, _portable(config), use_memory, prompts)
    source = ray_outcomes(spec, address, workers)
    return write_project_proposals(
        project, source, config, items, out_dir, into_project, should_stop, use_memory
    )


def project_job_from_args(
    args: argparse.Namespace, project: Any, items: Sequence[tuple[Path, Path]],
    out_dir: Path | None,
) -> Job[Any]:  # fmt: skip
    """``annotator propose --project ... --ray``: the engine settings the single-process run
    would use (flags, else the project's remembered ones), proposed on Ray."""
    from annotator.cli.memory import memory_engine_config

    return propose_project_on_ray(
        project, memory_engine_config(args, project), items, out_dir, args.into_project,
        use_memory=not args.no_memory, sidecar=args.sidecar, address=args.ray,
        workers=args.workers,
    )  # fmt: skip


def _portable(config: EngineConfig) -> EngineConfig:
    """``config`` with a relative local weights path made absolute (workers run elsewhere)."""
    from dataclasses import replace

    weights = Path(str(config.pretrained or ""))
    if config.pretrained and weights.is_file() and not weights.is_absolute():
        return replace(config, pretrained=str(weights.absolute()))
    return config
