"""``annotator train FOLDER``: retrain the project's head on its corrected labels, headless.

Prints the held-out metrics before and after (``--json``: as JSON). The engine flags are
remembered in the project (setting ``"engine"``), so a later ``annotator train FOLDER`` without
them uses the same model.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from typing import Any

from annotator.cli._engine_flags import add_engine_arguments, engine_config_from_args
from annotator.cli._project_flags import add_sidecar_argument

NAME = "train"
HELP = "retrain on the project's labels; print held-out seen/unseen mIoU and hIoU before and after"
ENGINE_SETTING = "engine"
#: Engine flags not remembered: they describe this machine or this run, not the model.
_NOT_REMEMBERED = frozenset({"device", "threads", "no_download"})


NO_HOLDOUT_NOTE = (
    "no labelled image was held out, so there are no before/after metrics: label (or import "
    "labels for) at least 2 images and keep --holdout above 0 to score the model."
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="project folder (images plus their .annotator data)")
    parser.add_argument("--rounds", type=int, default=2, help="1 = human labels only; each "
                        "further round adds self-training pseudo-labels (default 2)")  # fmt: skip
    parser.add_argument(
        "--holdout",
        type=float,
        default=0.2,
        help="fraction of labelled images held out for scoring (0.2)",
    )
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps per round (300)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument(
        "--generative", action=argparse.BooleanOptionalAction, default=None,
        help="CaGNet: learn the classes nobody labelled yet from features generated from their "
        "names (default: on when some class has no labels and CLIP weights are loaded)",
    )  # fmt: skip
    parser.add_argument(
        "--generative-steps", type=int, default=300, metavar="N",
        help="iterations of the generative step per round (300)",
    )  # fmt: skip
    parser.add_argument(
        "--list", action="store_true", help="do not train: list the versions with their scores"
    )
    parser.add_argument(
        "--use",
        metavar="VERSION",
        help="do not train: make VERSION (e.g. v0001; 'none' = zero-shot) the active model, "
        "list the versions and exit",
    )
    parser.add_argument(
        "--nproc", type=int, default=1, metavar="N",
        help="train with N local processes (torch.distributed + DDP; under torchrun leave it "
        "out); same result as one process, see docs/cluster.md",
    )  # fmt: skip
    parser.add_argument(
        "--max-restarts", type=int, default=0, metavar="K",
        help="with --nproc: restart all processes up to K times when one fails (0)",
    )  # fmt: skip
    add_sidecar_argument(parser)
    add_engine_arguments(parser)
    parser.set_defaults(run=run)


def _engine_defaults() -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    add_engine_arguments(parser)
    return vars(parser.parse_args([]))


def resolve_engine_args(args: argparse.Namespace, remembered: dict[str, Any] | None) -> dict:
    """Engine flags: those given on the command line, else the project's remembered ones."""
    defaults = _engine_defaults()
    chosen = {key: getattr(args, key) for key in defaults if key not in _NOT_REMEMBERED}
    for key, value in (remembered or {}).items():
        if key in chosen and chosen[key] == defaults.get(key):
            chosen[key] = value
    return chosen


def create_project_segmenter(args: argparse.Namespace, project: Any, command: str = NAME) -> Any:
    """The segmenter for the engine flags in ``args`` (from :func:`add_engine_arguments`), the
    project's remembered ones filling in flags left at their defaults; remembers the result
    (writable projects). Missing weights: a segmenter whose ``available`` is False, and a note
    on stderr (versions trained on filter features still work)."""
    from annotator.engine import create_segmenter

    chosen = resolve_engine_args(args, project.get_setting(ENGINE_SETTING))
    merged = argparse.Namespace(**{**vars(args), **chosen})
    segmenter = create_segmenter(engine_config_from_args(merged), allow_missing_weights=True)
    if not project.read_only:
        project.set_setting(ENGINE_SETTING, chosen)
    if not segmenter.available:
        reason = str(segmenter.weights_error).strip().splitlines()[0]
        print(
            f"annotator {command}: no CLIP weights are present, so it uses filter features only "
            f"({reason} 'annotator models info' tells how to get them).",
            file=sys.stderr,
        )
    return segmenter


def _train(
    args: argparse.Namespace, project: Any, config: Any, collective: Any = None,
    checkpoint: Any = None,
) -> Any:  # fmt: skip
    from tqdm import tqdm

    from annotator.progress import run_job
    from training import train
    from training.parallel import SINGLE

    collective = collective or SINGLE
    quiet = args.json or not collective.is_main
    with contextlib.redirect_stderr(io.StringIO()) if not collective.is_main else _nothing():
        segmenter = create_project_segmenter(args, project)
    # delay: a run refused at once (too few labels) prints its reason, not an empty 0/600 bar
    with tqdm(total=args.rounds * args.steps, file=sys.stderr, disable=quiet, delay=1) as bar:

        def show(step: Any) -> None:
            data = step.data if isinstance(step.data, dict) else {}
            if data.get("phase") == "generative":
                bar.set_description(f"generative round {data['round']}")
                bar.set_postfix(loss=f"{data['loss']:.3f}")
            elif "loss" in data:
                bar.set_description(f"fit round {data['round']}")
                bar.set_postfix(loss=f"{data['loss']:.3f}")
                bar.update((data["round"] - 1) * args.steps + data["step"] - bar.n)
            else:
                bar.set_description(data.get("phase", ""))

        return run_job(
            train(project, segmenter, config, collective=collective, checkpoint=checkpoint), show
        )


def _nothing() -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


def _print(result: Any, as_json: bool) -> None:
    import json

    from training.report import format_comparison, report_json

    note = None if result.split.holdout else NO_HOLDOUT_NOTE
    if as_json:
        payload = {
            "version": result.version.id,
            "active": result.active_id,
            "activated": result.activated,
            "rounds": [v.id for v in result.versions],
            "generative": result.generative,
            "seen": result.seen,
            "unseen": result.unseen,
            "before": report_json(result.metrics_before),
            "after": report_json(result.metrics_after),
            "pseudo_pixels": result.pseudo_pixels,
            "train_images": list(result.split.train),
            "holdout_images": list(result.split.holdout),
            "note": note or result.regression_note,
        }
        print(json.dumps(payload, indent=2))
        return
    print(format_comparison(result.metrics_before, result.metrics_after))
    if result.unseen:
        step = "on" if result.generative else "off"
        print(
            f"unseen classes (no human labels): {', '.join(result.unseen)}; generative step {step}"
        )
    if note:
        print(f"note: {note}", file=sys.stderr)
    if result.regression_note:
        print(f"warning: {result.regression_note}", file=sys.stderr)
    active = result.active_id or "zero-shot only"
    print(f"active version: {active} (new: {', '.join(v.id for v in result.versions)})")


def _use_version(project: Any, wanted: str | None) -> int:
    """Activate ``wanted`` ("none": zero-shot only; None: change nothing), then list the versions
    with their stored held-out scores."""
    from training import activate_version, list_versions
    from training.report import version_lines

    known = [v.id for v in list_versions(project)]
    if wanted is not None and wanted != "none" and wanted not in known:
        print(f"annotator train: no version {wanted!r}; versions: {', '.join(known) or 'none yet'}",
              file=sys.stderr)  # fmt: skip
        return 1
    if wanted is not None:
        activate_version(project, None if wanted == "none" else wanted)
    for line in version_lines(list_versions(project)):
        print(line)
    return 0


def run(args: argparse.Namespace) -> int:
    from annotator.errors import AnnotatorError
    from annotator.project import Project
    from training import TrainConfig
    from training.cagnet import CaGNetSettings

    try:
        steps = args.generative_steps
        cagnet = CaGNetSettings(steps=steps, warmup=max(0, min(steps - 1, steps // 3)))
        config = TrainConfig(
            rounds=args.rounds, holdout=args.holdout, steps=args.steps, device=args.device,
            generative=args.generative, cagnet=cagnet,
        )  # fmt: skip
    except ValueError as error:
        print(f"annotator train: {error}", file=sys.stderr)
        return 2
    from annotator.cluster import distributed

    if args.nproc != 1 or args.max_restarts or distributed.under_torchrun():
        return _run_distributed(args, config)
    try:
        with Project.open(args.folder, sidecar=args.sidecar) as project:
            if args.use is not None or args.list:
                return _use_version(project, args.use)
            result = _train(args, project, config)
    except AnnotatorError as error:
        print(f"annotator train: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("annotator train: cancelled; the previous version stays active.", file=sys.stderr)
        return 130
    _print(result, args.json)
    return 0


def _run_distributed(args: argparse.Namespace, config: Any) -> int:
    """``--nproc N``: launch N workers; inside a torchrun worker: train as one rank."""
    from annotator.cluster import distributed

    problem = distributed.usage_problem(
        args.nproc, args.list or args.use is not None, args.max_restarts
    )
    if problem:
        print(f"annotator train: {problem}", file=sys.stderr)
        return 2
    if not distributed.under_torchrun():
        return distributed.launch_local(run, args, args.nproc, args.max_restarts)
    return distributed.run_rank(args, config, _train, _print)
