"""Beyond one process: batch proposals on Ray, and retraining on 2 processes, next to one process.

Run: ``.venv/bin/python benchmarks/cluster.py [--images 24] [--size 512]``. Prints figures;
asserts nothing. Needs the ``cluster`` extra (Ray).

Ray part (:func:`bench_ray`): the same folder of ``--size`` x ``--size`` images proposed by a
ViT-B-16 with random weights (no download; the real architecture, so one proposal takes a few
hundred ms on a CPU) in this process, on 1 Ray worker and on 2 Ray workers of a local Ray with
``--cpus`` CPUs. Throughput is steady state (first to last result: the workers' one-off model
load is reported apart as "start"); Ray's per-image overhead is 1 Ray worker vs 1 in-process
run over the same images, and (less exposed to a shared machine's load) within one 1-worker run:
the driver's steady time per image against the time the worker spent proposing, in percent.

Training part (:func:`cluster_train.bench_training`): ``annotator train --nproc 1`` vs ``--nproc
2`` on the same generated project; wall time, ratio and how far the results differ.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from annotator.engine.batch import collect_inputs, propose_files
from annotator.engine.config import EngineConfig
from annotator.engine.segmenter import create_segmenter
from annotator.progress import Job

sys.path.insert(0, str(Path(__file__).parent))
from cluster_train import add_training_arguments, bench_training  # noqa: E402

CLASSES = ["cat", "dog", "grass", "sky", "road"]


def _images(folder: Path, count: int, size: int) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        small = rng.integers(0, 256, (size // 32, size // 32, 3), np.uint8)
        Image.fromarray(small).resize((size, size), Image.BILINEAR).save(folder / f"{i:04d}.png")
    return folder


def _timed(job: Job) -> tuple[float, float, int]:
    """``(seconds to the first result, seconds from first to last result, results)``."""
    start = time.perf_counter()
    stamps = []
    for _ in job:
        stamps.append(time.perf_counter())
    return stamps[0] - start, stamps[-1] - stamps[0], len(stamps)


@dataclass(frozen=True)
class TimedSpec:
    """A worker recipe that also hands back how long each proposal took inside the worker."""

    inner: Any

    def build(self) -> Callable[[Path], tuple[Any, float]]:
        compute = self.inner.build()

        def timed(path: Path) -> tuple[Any, float]:
            start = time.perf_counter()
            outcome = compute(path)
            return outcome, time.perf_counter() - start

        return timed


def _ray_overhead(config: EngineConfig, items: list, out: Path) -> None:
    """Ray's per-image overhead in one run: the driver's steady seconds per image (1 worker,
    PNGs written, everything as ``--ray``) against the seconds the worker spent proposing."""
    from annotator.cluster._ray_pool import ray_outcomes
    from annotator.cluster.ray_propose import FilesSpec
    from annotator.engine.batch import write_proposals

    inner, inside = ray_outcomes(TimedSpec(FilesSpec(config, tuple(CLASSES))), "local", 1), []

    def source(pending: Any) -> Any:
        for index, (outcome, seconds) in inner(pending):
            inside.append(seconds)
            yield index, outcome

    first, steady, count = _timed(write_proposals(source, config, items, CLASSES, out,
                                                  resume=False))  # fmt: skip
    proposing = sum(inside[1:])  # the images between the first and the last result
    print(f"Ray per-image overhead, 1 worker, same run: {(steady - proposing) / proposing * 100:+.1f}% "
          f"of {proposing / (count - 1) * 1000:.0f} ms per proposal in the worker (target <= 5%)")  # fmt: skip


def _row(name: str, first: float, steady: float, count: int) -> float:
    """Print one row; return steady seconds per image."""
    per_image = steady / max(1, count - 1)
    print(f"{name:<28} {first:>8.2f} {1 / per_image:>10.2f} {per_image * 1000:>10.1f}")
    return per_image


def bench_ray(args: argparse.Namespace) -> None:
    """Images/s of 1 process vs Ray with 1 and 2 workers, and Ray's per-image overhead."""
    import ray

    from annotator.cluster.ray_propose import propose_files_on_ray

    config = EngineConfig(model=args.model, pretrained=None, short_side=args.short_side,
                          window=0, refine=None, templates=("a photo of a {}.",), preset=None,
                          feature_cache_mb=0)  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    items = collect_inputs([_images(work / "images", args.images, args.size)])
    started = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level=logging.ERROR,
             _temp_dir=str(work / "ray"))  # fmt: skip
    print(f"ray.init: {time.perf_counter() - started:.1f} s; {len(items)} images "
          f"{args.size}x{args.size}, {args.model} (random weights), short side {args.short_side}")  # fmt: skip
    segmenter = create_segmenter(config)

    def local(out: str) -> Job:
        return propose_files(segmenter, items, CLASSES, work / out, resume=False)

    def on_ray(workers: int, out: str) -> Job:
        return propose_files_on_ray(config, items, CLASSES, work / out, workers=workers,
                                    resume=False)  # fmt: skip

    runs: list[tuple[str, Callable[[], Job]]] = [
        ("1 process", lambda: local("local-a")),
        ("Ray, 1 worker", lambda: on_ray(1, "ray1")),
        ("Ray, 2 workers", lambda: on_ray(2, "ray2")),
        ("1 process (again)", lambda: local("local-b")),
    ]
    print(f"{'run':<28} {'start s':>8} {'images/s':>10} {'ms/image':>10}")
    per_image = {name: _row(name, *_timed(make())) for name, make in runs}
    _ray_overhead(config, items, work / "ray-timed")
    ray.shutdown()
    single = (per_image["1 process"] + per_image["1 process (again)"]) / 2
    across = (per_image["Ray, 1 worker"] - single) / single * 100
    print(f"1 Ray worker vs 1 process, separate runs: {across:+.1f}% per image (noisy on a shared "
          f"machine: the runs meet different loads)")  # fmt: skip
    print(f"speed-up of 2 Ray workers over 1 process: {single / per_image['Ray, 2 workers']:.2f}x")
    for run in ("ray1", "ray2"):
        differ, total = _differences(work / "local-a", work / run)
        print(f"{run}: {differ} of {total} label pixels differ from the single-process PNGs")


def _differences(reference: Path, other: Path) -> tuple[int, int]:
    """Pixels whose label differs between the PNGs of two output folders, and all pixels.

    Same torch thread count -> 0 (the proposals are byte-identical); a different intra-op thread
    count may reorder float sums and flip a near-tie, which random weights have many of."""
    differ = total = 0
    for path in sorted(reference.glob("*.png")):
        ours, theirs = np.asarray(Image.open(path)), np.asarray(Image.open(other / path.name))
        differ, total = differ + int((ours != theirs).sum()), total + ours.size
    return differ, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24, help="images to propose (default 24)")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--model", default="ViT-B-16", help="open_clip model (random weights)")
    parser.add_argument("--short-side", type=int, default=224, help="working resolution")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--skip-ray", action="store_true", help="only the training part")
    parser.add_argument("--skip-training", action="store_true", help="only the Ray part")
    add_training_arguments(parser)
    args = parser.parse_args()
    if not args.skip_ray:
        bench_ray(args)
    if not args.skip_training:
        bench_training(args)


if __name__ == "__main__":
    main()
