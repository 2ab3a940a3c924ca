"""``annotator propose [PATH...] --project FOLDER``: propose with everything a project knows.

Its classes (display order; label PNG index i = the i-th class of the project's ``classes.json``
masks-export schema), its active trained version (``training.load_active_adapter``), its
remembered engine settings and its class memory. PATHs may lie inside the project or anywhere.
``--into-project`` stores the results as the project's proposals (status new -> proposed, the
review queue ordered by confidence) instead of, or as well as, writing ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from annotator.wording import plural


@dataclass
class ProjectProposeReport:
    """Label PNGs written, images stored as project proposals, ``(path, reason)`` failures."""

    written: list[Path] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped: int = 0
    restarted: bool = False


def classes_document(classes: Sequence[Any]) -> dict:
    """The masks-export ``classes.json`` of ``classes`` (``ClassInfo`` in display order)."""
    entries = [
        {"index": i, "name": c.name, "color": list(c.color), "synonyms": list(c.synonyms),
         "novel": c.novel}
        for i, c in enumerate(classes)
    ]  # fmt: skip
    return {"classes": entries, "unlabeled": 255 if len(classes) < 255 else 65535}


def project_adapter(project: Any, segmenter: Any, use_memory: bool) -> Any:
    """The active trained version (or None) wrapped in the class memory when ``use_memory``."""
    from annotator.engine.memory import create_memory_adapter, load_project_memory

    adapter = None
    try:
        from training import load_active_adapter
    except ImportError:
        pass
    else:
        adapter = load_active_adapter(project)
    if not use_memory or not segmenter.available:
        return adapter
    memory = load_project_memory(project, segmenter)
    if memory.stale_key is not None:
        print(
            f"note: the class memory was built for another model ({memory.stale_key}); run "
            f"'annotator memory {project.root} --rebuild' to use it with this one.",
            file=sys.stderr,
        )
    return (
        create_memory_adapter(project, segmenter, memory, inner=adapter) if memory.rows else adapter
    )


def project_relpath(project: Any, path: Path) -> str | None:
    """``path``'s relpath when it is an image of ``project``, else None."""
    from annotator.errors import ProjectError

    try:
        relpath = path.resolve().relative_to(Path(project.root).resolve()).as_posix()
        project.get_image(relpath)
    except (ValueError, ProjectError):
        return None
    return relpath


def default_items(project: Any) -> list[tuple[Path, Path]]:
    """Every image of the project without human labels, as ``(file, relative)`` inputs."""
    return [
        (project.image_path(r.relpath), Path(r.relpath))
        for r in project.list_images(has_labels=False)
    ]


def propose_project_files(
    project: Any, segmenter: Any, adapter: Any, items: Sequence[tuple[Path, Path]],
    out_dir: Path | None, into_project: bool, should_stop: Any = None, use_memory: bool = True,
) -> Any:  # fmt: skip
    """Batch job: propose ``items`` with the project's classes; yields Progress, returns a
    :class:`ProjectProposeReport`. Writes ``out_dir`` PNGs + ``classes.json`` when given
    (resuming what a run with the same settings wrote there: :mod:`annotator.engine.resume`)."""
    from annotator.engine.resume import local_outcomes

    prompts = [c.prompt for c in project.list_classes()]

    def compute(path: Path) -> Any:
        return propose_project_file(segmenter, adapter, prompts, path)

    return write_project_proposals(
        project, local_outcomes(compute), segmenter.config, items, out_dir, into_project,
        should_stop, use_memory,
    )  # fmt: skip


def propose_project_file(segmenter: Any, adapter: Any, prompts: Sequence[str], path: Path) -> Any:
    """``(indices [H, W], mean confidence)`` of one image, or ``Failed`` when unreadable."""
    from annotator.engine.resume import Failed
    from annotator.errors import ImageReadError

    try:
        return _propose(segmenter, adapter, prompts, path)
    except ImageReadError as error:
        return Failed(error.reason)


def write_project_proposals(
    project: Any, outcomes: Any, config: Any, items: Sequence[tuple[Path, Path]],
    out_dir: Path | None, into_project: bool, should_stop: Any = None, use_memory: bool = True,
) -> Any:  # fmt: skip
    """Store/write the outcomes ``outcomes`` computes (here or on workers) for ``items``, in
    order, as :func:`propose_project_files` does; yields Progress, returns the report."""
    from annotator.engine.batch import output_path, save_label_png
    from annotator.engine.resume import write_atomically, write_in_order
    from annotator.progress import never_stop

    classes = project.list_classes()
    colours = [tuple(c.color) for c in classes]
    report = ProjectProposeReport()
    state = None
    if out_dir is not None or into_project:
        settings = project_settings(project, config, use_memory)
        state = _resume_state(project, out_dir, settings)
        report.restarted = state.restarted

    def write(path: Path, relative: Path, outcome: Any, taken: set[Path]) -> Path | None:
        indices, confidence = outcome
        relpath = project_relpath(project, path) if into_project else None
        if relpath is not None:  # stored before the PNG: a journaled PNG means stored too
            _store(project, relpath, indices, classes, confidence)
            report.stored.append(relpath)
        elif into_project:
            report.failed.append((path, "not an image of the project; not stored"))
        if out_dir is None:  # journaled in the project (StoredProposals)
            return None if relpath is None else Path(relpath)
        target = output_path(out_dir, relative, taken)
        save_label_png(target, _unlabel(indices, len(classes), 255), colours)
        report.written.append(target)
        return target

    job = write_in_order(items, outcomes, write, state, should_stop or never_stop, report.failed)
    report.skipped = (yield from job).skipped
    if out_dir is not None:
        document = json.dumps(classes_document(classes), indent=1).encode()
        write_atomically(out_dir / "classes.json", document)
    return report


def _resume_state(project: Any, out_dir: Path | None, settings: dict) -> Any:
    """What a rerun skips: the PNGs journaled in ``out_dir``; without one, the proposals a
    run with the same settings stored in the project (:mod:`annotator.cli._propose_resume`)."""
    from annotator.cli._propose_resume import StoredProposals
    from annotator.engine.resume import ResumeState

    if out_dir is not None:  # a journaled PNG was stored first (see write_project_proposals)
        return ResumeState.open(out_dir, settings)
    return StoredProposals.open_in(project, settings)


def project_settings(project: Any, config: Any, use_memory: bool) -> dict:
    """The settings fingerprinted for resuming a project run's output folder: engine config,
    classes (ids, names, prompts, colours), the active trained version and the class memory."""
    from annotator.engine.resume import config_settings

    return {
        "kind": "project",
        "engine": config_settings(config),
        "classes": classes_document(project.list_classes()),
        "prompts": [c.prompt for c in project.list_classes()],
        "version": _active_version(project),
        "memory": _memory_digest(project) if use_memory else None,
    }


def _active_version(project: Any) -> Any:
    try:
        from training.models import version_store
    except ImportError:
        return None
    return version_store(project).active_id()


def _memory_digest(project: Any) -> str | None:
    """SHA-256 over the class memory's files (None without a memory)."""
    import hashlib

    from annotator.engine.memory import memory_folder

    folder = memory_folder(project)
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _propose(
    segmenter: Any, adapter: Any, prompts: Sequence[str], path: Path
) -> tuple[np.ndarray, float]:
    from annotator.errors import ImageReadError
    from annotator.imageio import is_image_file, load_image

    if not is_image_file(path):
        raise ImageReadError(path, "not an image file name (.jpg, .png, .tif, ...)")
    segmenter.set_image(load_image(path))
    proposal = segmenter.predict(list(prompts), adapter=adapter)
    return proposal.label_map, float(proposal.mean_confidence)


def _unlabel(indices: np.ndarray, count: int, unlabeled: int) -> np.ndarray:
    """Indices ``[H, W]`` with the background index (``count``) set to ``unlabeled``."""
    dtype = np.uint8 if unlabeled == 255 else np.uint16
    return np.where(indices >= count, unlabeled, indices).astype(dtype)


def _store(
    project: Any, relpath: str, indices: np.ndarray, classes: Sequence[Any], confidence: float
) -> None:
    lut = np.full(len(classes) + 1, project.unlabeled_value, dtype=project.label_dtype)
    lut[: len(classes)] = [c.id for c in classes]
    project.save_proposal(relpath, lut[np.minimum(indices, len(classes))], confidence)


def run_with_project(args: argparse.Namespace) -> int:
    """``annotator propose ... --project FOLDER``; exit code."""
    from annotator.errors import AnnotatorError
    from annotator.project import Project

    read_only = not args.into_project
    try:
        with Project.open(args.project, sidecar=args.sidecar, read_only=read_only) as project:
            report = _propose_into(args, project)
    except AnnotatorError as error:
        print(f"annotator propose: {error}", file=sys.stderr)
        return 1
    return 1 if report is None else _summarise(report, args)


def _propose_into(args: argparse.Namespace, project: Any) -> ProjectProposeReport | None:
    from annotator.cli.export import drain
    from annotator.cli.memory import create_memory_segmenter
    from annotator.engine.batch import collect_inputs

    if not project.list_classes():
        print("annotator propose: the project has no classes yet; add some in the app.",
              file=sys.stderr)  # fmt: skip
        return None
    items = collect_inputs(args.paths) if args.paths else default_items(project)
    if not items:
        print("annotator propose: no image to propose", file=sys.stderr)
        return None
    if getattr(args, "ray", None) is not None:
        from annotator.cluster.ray_propose import project_job_from_args

        return drain(project_job_from_args(args, project, items, output_folder(args)), "propose")
    _fail_fast_without_weights(args, project)
    segmenter = create_memory_segmenter(args, project)
    adapter = project_adapter(project, segmenter, use_memory=not args.no_memory)
    if not segmenter.available and adapter is None:
        raise segmenter.weights_error
    job = propose_project_files(
        project, segmenter, adapter, items, output_folder(args), args.into_project,
        use_memory=not args.no_memory,
    )  # fmt: skip
    return drain(job, "propose")


def _fail_fast_without_weights(args: argparse.Namespace, project: Any) -> None:
    """Raise the missing-weights error before torch loads (seconds sooner) when nothing else
    could propose: no trained version is active (``models/active.json`` absent; with one, its
    filter features may still propose and the engine decides). Downloads them when allowed."""
    from annotator.cli._weights_check import weights_problem
    from annotator.cli.memory import memory_engine_config
    from annotator.cli.propose import download_bar

    problem = weights_problem(memory_engine_config(args, project), download_bar())
    if problem is not None and not (project.sidecar_path("models") / "active.json").exists():
        raise problem


def output_folder(args: argparse.Namespace) -> Path | None:
    """``--out``; by default ``./proposals``, or nothing when storing ``--into-project``."""
    if args.out:
        return Path(args.out)
    return None if args.into_project else Path("proposals")


def _summarise(report: ProjectProposeReport, args: argparse.Namespace) -> int:
    from annotator.cli.propose import print_resume_note

    print_resume_note(report, output_folder(args) or f"the project {args.project}")
    if report.written:
        print(
            f"wrote {plural(len(report.written), 'label map')} and classes.json to {output_folder(args)}"
        )
    if args.into_project:
        print(f"stored {plural(len(report.stored), 'proposal')} in the project {args.project}")
    for path, reason in report.failed:
        print(f"  {path}: {reason}", file=sys.stderr)
    return 0 if report.written or report.stored or report.skipped else 1
