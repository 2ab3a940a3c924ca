"""Retraining speed and effect on a generated textured data set (CPU by default).

    .venv/bin/python benchmarks/train.py [--images 50] [--unlabelled 10] [--size 512]
        [--rounds 2] [--engines none,tiny] [--device cpu] [--warm]

For each engine ("none": filter features only; "tiny": the tiny random ViT; "vitb": ViT-B-16
with random weights, the real model's cost without its weights) it prints the time of every
phase (features, held-out views, fit per round, pseudo-labels), the time per round, and the
held-out mIoU / PA before (zero-shot) and after each round.
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
    args = parser.parse_args()
    for engine in args.engines.split(","):
        with tempfile.TemporaryDirectory() as folder:
            _run(engine.strip(), args, Path(folder) / "scenes")


if __name__ == "__main__":
    main()
