"""``annotator import FOLDER --format voc|coco|labelme|masks SOURCE``: add labels made elsewhere."""

from __future__ import annotations

import argparse
import sys

from annotator.cli._project_flags import add_sidecar_argument

NAME = "import"
HELP = "import VOC, COCO, labelme or index-mask labels into a project folder as human labels"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="the project (image folder)")
    parser.add_argument(
        "source",
        help="what to import: a VOCdevkit/VOC2012 or SegmentationClass folder, a COCO .json, a folder of labelme .json files, or a masks folder",
    )
    parser.add_argument("--format", required=True, choices=("voc", "coco", "labelme", "masks"))
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
    add_sidecar_argument(parser)
    parser.set_defaults(run=run)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from annotator.cli.export import drain
    from annotator.cli.memory import learn_new_labels
    from annotator.errors import AnnotatorError
    from annotator.formats import ImportOptions, import_into_project
    from annotator.metrics import read_class_names
    from annotator.project import Project

    try:
        names = tuple(read_class_names(args.classes)) if args.classes else None
        options = ImportOptions(overwrite=args.overwrite, class_names=names)
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
