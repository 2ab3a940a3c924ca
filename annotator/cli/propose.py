"""``annotator propose PATH... --classes "cat,dog,grass"``: zero-shot label maps for images.

``--project FOLDER`` proposes with a project's classes, trained version, settings and class
memory instead (:mod:`annotator.cli._propose_project`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from annotator.cli._engine_flags import add_engine_arguments, engine_config_from_args
from annotator.cli._project_flags import add_sidecar_argument
from annotator.cli._ray_flags import add_ray_arguments, check_ray_arguments
from annotator.wording import plural

if TYPE_CHECKING:
    from annotator.engine.batch import ProposeReport
    from annotator.progress import Job, Progress

NAME = "propose"
HELP = "propose label maps for images from typed class names (zero-shot, no training)"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="image files and/or folders")
    parser.add_argument(
        "--classes",
        help='comma-separated class names; synonyms joined by ";", e.g. "cat,tv; monitor,grass"',
    )
    parser.add_argument("--out", default=None, help="output folder (default ./proposals)")
    _add_project_arguments(parser)
    parser.add_argument(
        "--write-segments",
        action="store_true",
        help="with --proposer zegformer: also write segments/<image>.png (segment index per "
        "pixel) and segments/<image>.json (per-segment class scores)",
    )
    add_engine_arguments(parser)
    add_ray_arguments(parser)
    parser.set_defaults(run=run)


def _add_project_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("with a project")
    group.add_argument(
        "--project",
        metavar="FOLDER",
        help="use this project's classes (ids and order as its classes.json), active trained "
        "version, engine settings and class memory; PATHs may lie anywhere (default: the "
        "project's images without labels, with --into-project)",
    )
    group.add_argument(
        "--into-project",
        action="store_true",
        help="store the results as the project's proposals (statuses and review queue updated)",
    )
    group.add_argument(
        "--no-memory", action="store_true", help="ignore the project's class memory (to compare)"
    )
    add_sidecar_argument(group)


def parse_classes(text: str) -> list[str]:
    """``"cat, tv; monitor ,grass"`` -> ``["cat", "tv; monitor", "grass"]``."""
    return [name.strip() for name in text.split(",") if name.strip()]


def run(args: argparse.Namespace) -> int:
    from annotator.engine.batch import collect_inputs
    from annotator.errors import AnnotatorError

    if args.project and args.classes:
        print("annotator propose: --project uses the project's classes; drop --classes",
              file=sys.stderr)  # fmt: skip
        return 2
    if (refused := check_ray_arguments(args)) is not None:
        return refused
    if args.project:
        from annotator.cli._propose_project import run_with_project

        return run_with_project(args)
    if args.into_project or args.no_memory:
        print("annotator propose: --into-project and --no-memory need --project FOLDER",
              file=sys.stderr)  # fmt: skip
        return 2
    classes = parse_classes(args.classes or "")
    if not classes or not args.paths:
        print(
            "annotator propose: give image PATHs and --classes (e.g. --classes cat,dog), "
            "or --project FOLDER",
            file=sys.stderr,
        )
        return 2
    items = collect_inputs(args.paths)
    if not items:
        print("annotator propose: no image files found in the given paths", file=sys.stderr)
        return 1
    out = args.out or "proposals"
    try:
        report = _drain(_files_job(args, items, classes, out), len(items))
    except AnnotatorError as error:
        print(f"annotator propose: {error}", file=sys.stderr)
        return 1
    return _summarise(report, out)


def _files_job(
    args: argparse.Namespace, items: list, classes: list[str], out: str
) -> Job[ProposeReport]:
    """The propose job: on Ray workers with ``--ray``, else in this process."""
    from annotator.cli._weights_check import check_weights

    config = engine_config_from_args(args)
    if args.ray is not None:
        from annotator.cluster.ray_propose import propose_files_on_ray

        return propose_files_on_ray(
            config, items, classes, out, address=args.ray, workers=args.workers,
            write_segments=args.write_segments,
        )  # fmt: skip
    check_weights(config, progress=download_bar())  # before torch: a missing file fails fast
    from annotator.engine.batch import propose_files
    from annotator.engine.segmenter import create_segmenter

    segmenter = create_segmenter(config, progress=download_bar())
    return propose_files(segmenter, items, classes, out, write_segments=args.write_segments)


def download_bar() -> Callable[[Progress], None]:
    """A tqdm bar of the bytes of a weights download, shown once one starts."""
    from tqdm import tqdm

    bar: list[tqdm] = []

    def show(step: Progress) -> None:
        if not bar:
            bar.append(tqdm(total=step.total, unit="B", unit_scale=True, desc="weights"))
        bar[0].update(step.done - bar[0].n)

    return show


def _drain(job: Job[ProposeReport], total: int) -> ProposeReport:
    from tqdm import tqdm

    from annotator.progress import run_job

    with tqdm(total=total, unit="image", disable=total < 2, file=sys.stderr) as bar:
        return run_job(job, lambda step: bar.update(step.done - bar.n))


def print_resume_note(report: object, out: object) -> None:
    """Say on stderr what resuming an output folder did (skipped images, or a restart)."""
    if getattr(report, "restarted", False):
        print(f"note: {out} held proposals made with other settings; proposed every image again",
              file=sys.stderr)  # fmt: skip
    if getattr(report, "skipped", 0):
        print(f"skipped {plural(report.skipped, 'image')} already proposed in {out} with the same settings",
              file=sys.stderr)  # fmt: skip


def _summarise(report: ProposeReport, out: str) -> int:
    print_resume_note(report, out)
    print(f"wrote {plural(len(report.written), 'label map')} and classes.json to {out}")
    if report.failed:
        print(f"{plural(len(report.failed), 'file')} could not be read:", file=sys.stderr)
        for path, reason in report.failed:
            print(f"  {path}: {reason}", file=sys.stderr)
    return 0 if report.written or report.skipped else 1
