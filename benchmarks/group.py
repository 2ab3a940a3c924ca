"""Folder grouping (MaskContrast) time and peak memory on generated textured scenes (CPU).

    .venv/bin/python benchmarks/group.py [--images 200,50] [--size 512] [--k 5] [--steps 150]
        [--engine none|tiny] [--threads N]

For each folder size it writes the scenes, runs ``group_folder`` in a fresh child process (so
peak memory is that run's alone) and prints seconds per phase, the total, the child's peak RSS
and the Hungarian-matched mIoU against the hidden truth. Memory should stay flat as the number
of images grows: features, embeddings and maps stream through the sidecar, and K-means keeps a
bounded sample.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path


def _child(folder: str, k: int, steps: int, engine: str, threads: int) -> None:
    """Run one grouping and print a JSON line of figures (inside the child process)."""
    import resource

    import numpy as np
    import torch

    from annotator.progress import run_job
    from annotator.project import Project
    from training.grouping import GroupConfig, group_folder, load_group_map
    from training.grouping.kmeans import matched_miou, overlap_matrix

    torch.set_num_threads(threads)
    segmenter = None
    if engine == "tiny":
        from annotator.engine import EngineConfig, create_segmenter
        from annotator.engine.testing import TINY_MODEL

        segmenter = create_segmenter(EngineConfig(model=TINY_MODEL, pretrained=None, device="cpu"))
    seconds: dict[str, float] = defaultdict(float)
    last = [time.perf_counter()]

    def clock(step) -> None:  # a job yields after the work, so the time is the event's phase's
        now = time.perf_counter()
        seconds[step.data["phase"]] += now - last[0]
        last[0] = now

    project = Project.open(folder)
    start = time.perf_counter()
    result = run_job(group_folder(project, segmenter, config=GroupConfig(k=k, steps=steps)), clock)
    total = time.perf_counter() - start
    truth = np.load(Path(folder).parent / "truth.npz")
    overlap = np.zeros((5, k), np.int64)
    for relpath in result.images:
        overlap += overlap_matrix(
            truth[relpath.replace("/", "__")], load_group_map(project, relpath), 5, k
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": dict(seconds), "total": total, "peak_mib": peak,
                      "miou": matched_miou(overlap)[0]}))  # fmt: skip


def _run(count: int, args: argparse.Namespace) -> dict:
    import numpy as np

    from training.grouping.testing import write_group_folder

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "scenes"
        truth = write_group_folder(folder, count, size=args.size, seed=0)
        np.savez(Path(tmp) / "truth.npz", **{k.replace("/", "__"): v for k, v in truth.items()})
        command = [sys.executable, __file__, "--child", str(folder), "--k", str(args.k),
                   "--steps", str(args.steps), "--engine", args.engine,
                   "--threads", str(args.threads)]  # fmt: skip
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="200,50", help="folder sizes, comma separated")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--engine", choices=("none", "tiny"), default="none")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.k, args.steps, args.engine, args.threads)
        return
    print(f"grouping {args.size}x{args.size} scenes, K={args.k}, {args.steps} steps, "
          f"engine={args.engine}, {args.threads} threads")  # fmt: skip
    for count in (int(n) for n in args.images.split(",")):
        figures = _run(count, args)
        phases = "  ".join(f"{p} {s:.1f}s" for p, s in figures["seconds"].items())
        print(
            f"{count:5d} images: total {figures['total']:.1f}s ({phases}); "
            f"peak RSS {figures['peak_mib']:.0f} MiB; matched mIoU {figures['miou']:.3f}"
        )


if __name__ == "__main__":
    main()
