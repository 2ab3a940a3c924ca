"""``annotator export FOLDER --format coco|voc|masks|labelme --out PATH``: write the human
labels (and, for COCO, VOC and labelme, the images upright beside them)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from annotator.cli._project_flags import add_sidecar_argument

NAME = "export"
HELP = (
    "export the human labels of a project folder as COCO JSON, Pascal-VOC, index masks or labelme"
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="the project (image folder)")
    parser.add_argument("--format", required=True, choices=("coco", "voc", "masks", "labelme"))
    parser.add_argument(
        "--out", required=True, help="output folder (COCO: a folder or a .json file)"
    )
    parser.add_argument(
        "--status", default=None, help="only images with these statuses, e.g. reviewed,edited"
    )
    parser.add_argument(
        "--split", type=float, default=1.0, help="fraction in the train split (default 1.0)"
    )
    parser.add_argument(
        "--per-class", action="store_true", help="COCO: one annotation per class per image"
    )
    parser.add_argument(
        "--polygons",
        action="store_true",
        help="COCO: polygons instead of RLE (holes in regions come back filled)",
    )
    parser.add_argument(
        "--no-images",
        action="store_true",
        help="COCO: do not copy the images into images/ (file_name then names the project's "
        "originals; EXIF-rotated ones are listed)",
    )
    add_sidecar_argument(parser)
    parser.set_defaults(run=run)  # fmt: skip


def drain(job: Any, label: str) -> Any:
    """Run a batch job, drawing a one-line progress counter on stderr; return its result."""
    from annotator.progress import run_job

    def show(step: Any) -> None:
        if sys.stderr.isatty() or step.done == step.total:
            end = "\n" if step.done == step.total else "\r"
            print(f"{label}: {step.done}/{step.total}", end=end, file=sys.stderr, flush=True)

    return run_job(job, show)


def _open_for_reading(args: argparse.Namespace) -> Any:
    """Open for writing (which first catches up with files renamed on disk); if the app has the
    project open, read it as last saved instead."""
    from annotator.errors import ProjectLockedError, ProjectReadOnlyError
    from annotator.project import Project

    try:
        return Project.open(args.folder, sidecar=args.sidecar)
    except (ProjectLockedError, ProjectReadOnlyError) as error:
        print(f"note: {error} Reading it as last saved.", file=sys.stderr)
        return Project.open(args.folder, sidecar=args.sidecar, read_only=True)


def run(args: argparse.Namespace) -> int:
    from annotator.errors import AnnotatorError
    from annotator.formats import ExportOptions, export_project

    statuses = (
        tuple(s.strip() for s in args.status.split(",") if s.strip()) if args.status else None
    )
    options = ExportOptions(
        statuses=statuses,
        split=args.split,
        per_region=not args.per_class,
        polygons=args.polygons,
        copy_images=not args.no_images,
    )
    try:
        with _open_for_reading(args) as project:
            report = drain(export_project(project, args.format, args.out, options), "export")
    except AnnotatorError as error:
        print(f"annotator export: {error}", file=sys.stderr)
        return 1
    print(report.summary("exported"))  # includes report.notes
    for output in report.outputs:
        print(f"wrote {output}")
    return 0  # fmt: skip
