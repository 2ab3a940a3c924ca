"""``annotator eval``: mIoU, PA, MA and seen/unseen hIoU over a whole data set.

``annotator eval --gt DIR --pred DIR`` scores two folders of index masks;
``annotator eval FOLDER`` scores a project: with a trained version active (``annotator train``),
that version's predictions on the held-out reviewed images; otherwise the stored proposals against
the human labels. ``--source`` picks one explicitly.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from annotator.cli._project_flags import add_sidecar_argument

if TYPE_CHECKING:
    from annotator.metrics import MetricsReport

NAME = "eval"
HELP = "score predictions against labels: mIoU, PA, MA, seen/unseen mIoU and hIoU"


NOTHING_TO_SCORE = (
    "No image has both human labels and a stored proposal, so there is nothing to score. "
    "The app stores proposals (Propose, Propose all); 'annotator propose' writes label files "
    "instead, which you can score with --gt LABELS --pred PROPOSALS."
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder",
        nargs="?",
        help="a project: score its active trained version on the held-out images, or (with no "
        "version trained) its stored proposals against its human labels",
    )
    parser.add_argument(
        "--source",
        choices=("auto", "active", "proposals"),
        default="auto",
        help="FOLDER only: 'active' = the active trained version (or zero-shot) on the held-out "
        "images; 'proposals' = stored proposals vs human labels; 'auto' (default) = 'active' "
        "once a version is trained, else 'proposals'",
    )
    parser.add_argument("--gt", help="folder of truth index masks (PNG)")
    parser.add_argument("--pred", help="folder of predicted index masks, same relative names")
    parser.add_argument("--classes", help="text file with one class name per line, in index order")
    parser.add_argument(
        "--unseen",
        default="",
        help="comma-separated unseen class names for hIoU (project default: classes marked novel)",
    )
    parser.add_argument(
        "--ignore", type=int, default=255, help="truth value to ignore (default 255)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_sidecar_argument(parser)
    from annotator.cli._engine_flags import add_engine_arguments

    add_engine_arguments(parser)
    parser.set_defaults(run=run)  # fmt: skip


def _evaluate(args: argparse.Namespace) -> MetricsReport:
    from annotator.cli.export import _open_for_reading, drain
    from annotator.errors import FormatError
    from annotator.metrics import evaluate_folders, evaluate_project, read_class_names

    unseen = [n.strip() for n in args.unseen.split(",") if n.strip()]
    if args.folder and not (args.gt or args.pred):
        with _open_for_reading(args) as project:
            if _wants_active_version(args.source, project):
                return _evaluate_active(args, project, unseen)
            print("eval: stored proposals vs human labels", file=sys.stderr)
            report = drain(evaluate_project(project, unseen=unseen or None), "eval")
            if report.images == 0:
                raise FormatError(NOTHING_TO_SCORE)
            return report
    if not (args.gt and args.pred) or args.folder:
        raise FormatError("Give either a project FOLDER, or both --gt DIR and --pred DIR.")
    names = read_class_names(args.classes) if args.classes else None
    return evaluate_folders(args.gt, args.pred, names, unseen, args.ignore)


def _wants_active_version(source: str, project: object) -> bool:
    from training import active_version

    return source == "active" or (source == "auto" and active_version(project) is not None)


def _evaluate_active(args: argparse.Namespace, project: object, unseen: list[str]) -> MetricsReport:
    """The active trained version (zero-shot if none) on the project's held-out images."""
    from annotator.cli.export import drain
    from annotator.cli.train import create_project_segmenter
    from training import active_version, evaluate_active_job

    version = active_version(project)
    name = f"version {version.id}" if version is not None else "zero-shot (no version trained)"
    print(f"eval: {name} on the held-out reviewed images", file=sys.stderr)
    segmenter = create_project_segmenter(args, project, command="eval")
    return drain(evaluate_active_job(project, segmenter, unseen=unseen or None), "eval")


def run(args: argparse.Namespace) -> int:
    from annotator.errors import AnnotatorError
    from annotator.metrics import report_to_json

    try:
        report = _evaluate(args)
    except AnnotatorError as error:
        print(f"annotator eval: {error}", file=sys.stderr)
        return 1
    print(report_to_json(report) if args.json else report.format_table())
    return 0
