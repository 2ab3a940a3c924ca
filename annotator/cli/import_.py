"""``annotator import FOLDER --format voc|coco|labelme|masks|isat SOURCE``: add labels made
elsewhere (labelme also reads X-AnyLabeling files)."""

from __future__ import annotations

import argparse
import sys

from annotator.cli._project_flags import add_sidecar_argument

NAME = "import"
HELP = "import VOC, COCO, labelme/X-AnyLabeling, ISAT or index-mask labels as human labels"

FORMATS = ("voc", "coco", "labelme", "masks", "isat")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="the project (image folder)")
    parser.add_argument(
        "source",
        help="what to import: a VOCdevkit/VOC2012 or SegmentationClass folder, a COCO .json, a folder of labelme or ISAT .json files, or a masks folder",
    )
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument(
        "--classes",
        default=None,
        help="VOC/masks: text file with one class name per line, in index order",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing human labels (default: keep them)",
    )
    parser.add_argument("--no-memory", action="store_true", help="do not teach the class memory")
    _add_label_arguments(parser)
    add_sidecar_argument(parser)
    parser.set_defaults(run=run)  # fmt: skip


def _add_label_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--status", choices=("reviewed", "edited"), default=None,
        help="status of the imported labels (default: what the file records, else reviewed: "
        "imported human labels are ground truth)",
    )  # fmt: skip
    parser.add_argument(
        "--fill-unlabeled", metavar="NAME", default=None,
        help="give pixels no shape covers this class (e.g. _background_, as labelme2voc does); "
        "default: leave them unlabelled",
    )  # fmt: skip
    parser.add_argument(
        "--boxes-as-masks", action="store_true",
        help="COCO: import boxes without a mask as filled rectangles",
    )  # fmt: skip
    parser.add_argument(
        "--line-width", type=int, default=10,
        help="labelme: width in pixels of line/linestrip shapes (default 10, as labelme)",
    )  # fmt: skip
    parser.add_argument(
        "--point-radius", type=int, default=5,
        help="labelme: radius in pixels of point shapes (default 5, as labelme)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from annotator.cli.export import drain
    from annotator.cli.memory import learn_new_labels
    from annotator.errors import AnnotatorError
    from annotator.formats import ImportOptions, import_into_project
    from annotator.metrics import read_class_names
    from annotator.project import Project

    try:
        names = tuple(read_class_names(args.classes)) if args.classes else None
        options = ImportOptions(
            overwrite=args.overwrite, class_names=names, status=args.status,
            fill_unlabeled=args.fill_unlabeled, boxes_as_masks=args.boxes_as_masks,
            line_width=max(1, min(args.line_width, 1000)),
            point_radius=max(0, min(args.point_radius, 1000)),
        )  # fmt: skip
        with Project.open(args.folder, sidecar=args.sidecar) as project:
            report = drain(
                import_into_project(project, args.format, args.source, options), "import"
            )
            if report.written and not args.no_memory:  # the class memory learns them at once
                learn_new_labels(project)
    except AnnotatorError as error:
        print(f"annotator import: {error}", file=sys.stderr)
        return 1
    print(report.summary("imported"))
    return 0 if report.written or not report.skipped else 1
