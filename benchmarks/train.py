"""Retraining speed and effect on a generated textured data set (CPU by default).

    .venv/bin/python benchmarks/train.py [--images 50] [--unlabelled 10] [--size 512]
        [--rounds 2] [--engines none,tiny] [--device cpu] [--warm]

For each engine ("none": filter features only; "tiny": the tiny random ViT; "vitb": ViT-B-16
with random weights, the real model's cost without its weights) it prints the time of every
phase (features, held-out views, fit per round, pseudo-labels), the time per round, and the
held-out mIoU / PA before (zero-shot) and after each round.

Then the generative step (CaGNet) on the planted world of ``training.cagnet.world`` (zero-shot
cannot name its classes; two classes are never labelled), at the same image count and size: the
time of a round without and with the generative step, and seen / unseen mIoU and hIoU for plain
retraining, generative retraining and the random-text control (``--no-world`` skips it).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from annotator.progress import Progress, run_job


def _segmenter(engine: str, device: str) -> Any:
    if engine == "none":
        return None
    from annotator.engine import EngineConfig, create_segmenter
    from annotator.engine.testing import TINY_MODEL

    model = {"tiny": TINY_MODEL, "vitb": "ViT-B-16"}[engine]
    return create_segmenter(EngineConfig(model=model, pretrained=None, device=device))


class _PhaseClock:
    """Seconds spent per (phase, round), from the job's progress events."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, int], float] = defaultdict(float)
        self.last = time.perf_counter()

    def __call__(self, step: Progress) -> None:
        now = time.perf_counter()
        data = step.data if isinstance(step.data, dict) else {}
        self.seconds[(data.get("phase", "?"), data.get("round", 1))] += now - self.last
        self.last = now


def _run(engine: str, args: argparse.Namespace, folder: Path) -> None:
    from training import TrainConfig, train
    from training.testing import build_textured_project

    total = args.images + args.unlabelled
    project = build_textured_project(folder, total, args.images, args.size, seed=1)
    segmenter = _segmenter(engine, args.device)
    if args.warm and segmenter is not None:
        _pre_encode(project, segmenter)
    clock = _PhaseClock()
    start = time.perf_counter()
    config = TrainConfig(rounds=args.rounds, device=args.device)
    result = run_job(train(project, segmenter, config), clock)
    elapsed = time.perf_counter() - start
    project.close()
    _print(engine, args, clock, result, elapsed)


def _pre_encode(project: Any, segmenter: Any) -> None:
    """Encode every image first, as the app does while the user labels (features are cached)."""
    start = time.perf_counter()
    for record in project.list_images():
        segmenter.set_image(project.load_image(record.relpath))
    print(f"pre-encoding {segmenter.encode_count} images (not part of the job): "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip


def _print(
    engine: str, args: argparse.Namespace, clock: _PhaseClock, result: Any, elapsed: float
) -> None:
    split = result.split
    print(f"\n== engine: {engine}  ({args.images} labelled + {args.unlabelled} unlabelled images, "
          f"{args.size} x {args.size}, device {args.device}, torch threads {torch.get_num_threads()})")  # fmt: skip
    print(f"train images {len(split.train)}, held-out {len(split.holdout)}")
    for (phase, round_index), seconds in sorted(clock.seconds.items(), key=lambda kv: kv[0][1]):
        print(f"  round {round_index}  {phase:<14} {seconds:7.1f} s")
    per_round = defaultdict(float)
    for (_phase, round_index), seconds in clock.seconds.items():
        per_round[round_index] += seconds
    for round_index, seconds in sorted(per_round.items()):
        print(f"round {round_index} total: {seconds:.1f} s")
    print(
        f"whole job: {elapsed:.1f} s; pseudo-labelled pixels per extra round: {result.pseudo_pixels}"
    )
    before = result.metrics_before
    print(f"held-out before (zero-shot): mIoU {before.miou:.3f}  PA {before.pixel_accuracy:.3f}")
    for version in result.versions:
        after = version.metrics["after"]
        print(f"held-out after {version.id} (round {version.extra['round']}): "
              f"mIoU {after['miou']:.3f}  PA {after['pixel_accuracy']:.3f}  MA {after['mean_accuracy']:.3f}")  # fmt: skip


def _world_run(args: argparse.Namespace, folder: Path, generative: bool, random_text: bool):
    from training import TrainConfig, train
    from training.cagnet.world import build_world_project, create_world_segmenter

    held = max(2, args.images // 5)
    project, holdout = build_world_project(
        folder, args.images - held, held, args.unlabelled, args.size, seed=1
    )
    segmenter = create_world_segmenter(random_text, short_side=args.size, device=args.device)
    config = TrainConfig(
        rounds=1, holdout_images=tuple(holdout), generative=generative, device=args.device
    )
    clock = _PhaseClock()
    start = time.perf_counter()
    result = run_job(train(project, segmenter, config), clock)
    elapsed = time.perf_counter() - start
    project.close()
    return result, clock, elapsed


def _pct(value: float | None) -> str:
    return "   -" if value is None else f"{100 * value:5.1f}"


def _world(args: argparse.Namespace) -> None:
    print(f"\n== generative step on the planted world ({args.images} labelled + {args.unlabelled} "
          f"unlabelled images, {args.size} x {args.size}, device {args.device})")  # fmt: skip
    rows = []
    for label, generative, random_text in (
        ("plain retraining", False, False),
        ("generative", True, False),
        ("generative, random text (control)", True, True),
    ):
        with tempfile.TemporaryDirectory() as folder:
            result, clock, elapsed = _world_run(args, Path(folder) / "w", generative, random_text)
        fit = clock.seconds[("fit", 1)]
        step = clock.seconds[("generative", 1)]
        print(f"{label:<34} round 1: fit {fit:6.1f} s  generative step {step:6.1f} s  "
              f"whole job {elapsed:6.1f} s")  # fmt: skip
        rows.append((label, result))
    print(f"{'held-out':<34} {'seen':>5} {'unseen':>6} {'hIoU':>5}")
    zero_shot = rows[0][1].metrics_before
    print(f"{'zero-shot':<34} {_pct(zero_shot.seen_miou)} {_pct(zero_shot.unseen_miou)} "
          f"{_pct(zero_shot.hiou)}")  # fmt: skip
    for label, result in rows:
        after = result.metrics_after
        print(f"{label:<34} {_pct(after.seen_miou)} {_pct(after.unseen_miou)} {_pct(after.hiou)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=50, help="labelled (reviewed) images")
    parser.add_argument("--unlabelled", type=int, default=10, help="unlabelled images for ST")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--engines", default="none,tiny", help="comma list of none, tiny, vitb")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--warm", action="store_true", help="encode the images before timing (as in the app)"
    )
    parser.add_argument("--world", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the generative step on the planted world")  # fmt: skip
    args = parser.parse_args()
    for engine in filter(None, args.engines.split(",")):
        with tempfile.TemporaryDirectory() as folder:
            _run(engine.strip(), args, Path(folder) / "scenes")
    if args.world:
        _world(args)


if __name__ == "__main__":
    main()
