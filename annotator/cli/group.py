"""``annotator group FOLDER --k K``: group an unlabelled folder's pixels (MaskContrast).

Trains a pixel embedding on the folder's own mask proposals, clusters every pixel into K groups
and stores them in the project (the app's Groups panel shows them). ``--out DIR`` also writes one
PNG per image (relative paths mirrored, uint8 group id per pixel, 255 = no group) and
``groups.json``. Run it again after an interruption: finished work is reused.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from annotator.cli._engine_flags import add_engine_arguments
from annotator.cli._project_flags import add_sidecar_argument

NAME = "group"
HELP = "group an unlabelled folder by appearance (K groups); --out writes maps + groups.json"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="project folder (images plus their .annotator data)")
    parser.add_argument("--k", type=int, required=True, help="number of groups")
    parser.add_argument("--out", default=None, help="also write maps and groups.json here")
    parser.add_argument("--steps", type=int, default=150,
                        help="embedding training steps (0 = cluster the raw features; 150)")  # fmt: skip
    parser.add_argument("--size", type=int, default=128,
                        help="grouping resolution, long side in pixels (128)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the groups as JSON")
    add_sidecar_argument(parser)
    add_engine_arguments(parser)
    parser.set_defaults(run=run)


def _group(args: argparse.Namespace, project: Any, config: Any) -> Any:
    from tqdm import tqdm

    from annotator.cli.train import create_project_segmenter
    from annotator.progress import run_job
    from training.grouping import group_folder

    segmenter = create_project_segmenter(args, project, command=NAME)
    shown = {"phase": None}
    with tqdm(file=sys.stderr, disable=args.json) as bar:

        def show(step: Any) -> None:
            phase = step.data.get("phase", "") if isinstance(step.data, dict) else ""
            if shown["phase"] != phase:
                shown["phase"] = phase
                bar.reset(total=step.total)
                bar.set_description(phase)
            bar.update(step.done - bar.n)

        return run_job(group_folder(project, segmenter, config=config), show)


def _print(result: Any, as_json: bool) -> None:
    import json

    if as_json:
        print(json.dumps(result.to_json()["groups"], indent=1))
        return
    for info in result.groups:
        names = ", ".join(info.suggested_names) or "-"
        print(f"group {info.id:3d}: {info.pixels:10d} px in {len(info.images):5d} images  "
              f"names: {names}")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from annotator.errors import AnnotatorError
    from annotator.project import Project
    from training.grouping import GroupConfig, export_groups

    try:
        config = GroupConfig(k=args.k, steps=args.steps, size=args.size)
    except ValueError as error:
        print(f"annotator group: {error}", file=sys.stderr)
        return 2
    try:
        with Project.open(args.folder, sidecar=args.sidecar) as project:
            result = _group(args, project, config)
            if args.out:
                written = export_groups(project, args.out)
                print(f"wrote {written} and {len(result.images)} maps", file=sys.stderr)
    except AnnotatorError as error:
        print(f"annotator group: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("annotator group: cancelled; run it again to continue.", file=sys.stderr)
        return 130
    _print(result, args.json)
    return 0
