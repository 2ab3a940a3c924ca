"""Retraining with 1 vs 2 processes (``annotator train --nproc N``) on the same generated project.

    .venv/bin/python benchmarks/cluster_train.py [--train-images 24] [--train-size 96]
        [--train-steps 150] [--train-rounds 2] [--train-model tiny|vitb]

Builds a textured project (``training.testing``), copies it, trains each copy with the ``annotator
train`` command (a subprocess, as a user runs it: process start-up, model creation, the sharded
encoding, the DDP fit and the rank-0 write all count), and prints the wall time of each, their
ratio, and how far the two results differ: held-out mIoU / pixel accuracy and the largest weight
difference of the saved heads (float rounding only, by construction). ``bench_training(args)``
is what ``benchmarks/cluster.py`` calls; ``args`` may lack any of the fields above (defaults).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULTS = {
    "train_images": 24,
    "train_size": 96,
    "train_steps": 150,
    "train_rounds": 2,
    "train_model": "tiny",
}
_MODELS = {"tiny": "annotator-tiny-vit", "vitb": "ViT-B-16"}


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--train-*`` options of :func:`bench_training`."""
    for name, default in DEFAULTS.items():
        flag = "--" + name.replace("_", "-")
        kind = str if isinstance(default, str) else int
        parser.add_argument(flag, type=kind, default=default)


def _setting(args: Any, name: str) -> Any:
    return getattr(args, name, DEFAULTS[name])


def _train(folder: Path, nproc: int, args: Any) -> tuple[float, dict]:
    model = _MODELS[_setting(args, "train_model")]
    command = [
        sys.executable, "-m", "annotator", "train", str(folder), "--json", "--nproc", str(nproc),
        "--rounds", str(_setting(args, "train_rounds")), "--steps", str(_setting(args, "train_steps")),
        "--model", model, "--pretrained", "none", "--device", "cpu",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"annotator train --nproc {nproc} failed:\n{done.stderr[-3000:]}")
    return seconds, json.loads(done.stdout)


def _weight_difference(first: Path, second: Path, version_ids: list[str]) -> float:
    """Largest absolute difference of any weight of the two projects' versions."""
    from annotator.project import Project
    from training.models import version_store

    worst = 0.0
    for version_id in version_ids:
        heads = []
        for folder in (first, second):
            with Project.open(folder, read_only=True) as project:
                heads.append(version_store(project).load_head(version_id).state_dict())
        for key, tensor in heads[0].items():
            worst = max(worst, float((tensor - heads[1][key]).abs().max()))
    return worst


def bench_training(args: Any) -> None:
    """Print training time for 1 vs 2 processes and the held-out metric difference."""
    from training.testing import build_textured_project

    images, size = _setting(args, "train_images"), _setting(args, "train_size")
    with tempfile.TemporaryDirectory() as temp:
        base = Path(temp)
        reviewed = max(2, images * 5 // 6)
        build_textured_project(base / "p1", count=images, reviewed=reviewed, size=size).close()
        shutil.copytree(base / "p1", base / "p2")
        runs = {nproc: _train(base / f"p{nproc}", nproc, args) for nproc in (1, 2)}
        worst = _weight_difference(base / "p1", base / "p2", runs[1][1]["rounds"])
    (one_s, one), (two_s, two) = runs[1], runs[2]
    print(
        f"training: {images} images ({reviewed} labelled) {size}x{size}, "
        f"{_setting(args, 'train_rounds')} rounds x {_setting(args, 'train_steps')} steps, "
        f"model {_setting(args, 'train_model')} (random weights), CPU, gloo"
    )
    print(f"  1 process   {one_s:7.1f} s   held-out mIoU {one['after']['miou']:.6f}  "
          f"PA {one['after']['pixel_accuracy']:.6f}")  # fmt: skip
    print(f"  2 processes {two_s:7.1f} s   held-out mIoU {two['after']['miou']:.6f}  "
          f"PA {two['after']['pixel_accuracy']:.6f}")  # fmt: skip
    print(f"  speed-up (1 / 2 processes wall time): {one_s / two_s:.2f}x")
    print(
        f"  |mIoU difference| {abs(one['after']['miou'] - two['after']['miou']):.2e}, "
        f"|PA difference| {abs(one['after']['pixel_accuracy'] - two['after']['pixel_accuracy']):.2e}, "
        f"largest head weight difference {worst:.2e}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_training_arguments(parser)
    bench_training(parser.parse_args(argv))


if __name__ == "__main__":
    main()
