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
    parser.add_argument(
        "--classes",
        help="class names in index order: a text file (one per line) or a classes.json; default: "
        "the classes.json that 'annotator propose' wrote into --pred (or one in --gt)",
    )
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
    from annotator.metrics import evaluate_folders, evaluate_project

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
    names = folder_class_names(args.classes, args.pred, args.gt)
    _check_unseen(unseen, names)
    return evaluate_folders(args.gt, args.pred, names, unseen, args.ignore)


def folder_class_names(classes: str | None, pred: str, gt: str) -> list[str] | None:
    """Class names by index: ``--classes`` (text or classes.json), else the ``classes.json`` in
    ``pred`` then in ``gt``; None when there is none (classes are then named by index)."""
    from pathlib import Path

    from annotator.metrics import read_class_names

    if classes:
        path = Path(classes)
        return read_classes_json(path) if path.suffix == ".json" else read_class_names(path)
    for folder in (pred, gt):
        candidate = Path(folder) / "classes.json"
        if candidate.is_file():
            print(f"eval: class names from {candidate}", file=sys.stderr)
            return read_classes_json(candidate)
    return None


def read_classes_json(path: object) -> list[str]:
    """Names by index from a ``classes.json`` (``annotator propose`` / ``export --format masks``)."""
    import json
    from pathlib import Path

    from annotator.errors import FormatError

    try:
        document = json.loads(Path(str(path)).read_text("utf-8"))
        entries = sorted(document["classes"], key=lambda c: int(c["index"]))
        return [str(entry["name"]) for entry in entries]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise FormatError(f"{path} is not a classes.json written by annotator: {error}") from error


def _check_unseen(unseen: list[str], names: list[str] | None) -> None:
    from annotator.errors import FormatError

    if not unseen:
        return
    if names is None:
        raise FormatError(
            f"--unseen names classes ({', '.join(unseen)}), but the masks hold only class "
            "indices and neither --pred nor --gt has a classes.json: pass --classes FILE "
            "(one class name per line, in index order)."
        )
    unknown = [n for n in unseen if n not in names]
    if unknown:
        raise FormatError(
            f"Unseen classes {unknown} are not among the classes {names}; check --unseen, or "
            "pass --classes FILE (one class name per line, in index order)."
        )


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
