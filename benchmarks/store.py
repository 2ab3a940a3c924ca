"""Project-store figures: opening a 10,000-image folder, exporting 1,000 labelled images.

Run: ``.venv/bin/python benchmarks/store.py [--images 10000] [--export-images 1000]``.
Prints figures; asserts nothing (timings are not tests).

Cases measured (the 1 s target of issue 3 is about both opens; memory must stay flat per image):
- first open: a folder no project has seen, to a listed project (one directory walk with a stat
  per file and one batch of inserts; no file is opened: sizes are read on demand, hashes when
  work is saved or a rename is possible);
- re-open: the same folder again, unchanged ((size, mtime) match, so no file is read);
- size pass: the optional ``Project.read_image_sizes`` job reading every header (no pixels);
- export: COCO with RLE per connected region, and Pascal-VOC, from 1,000 labelled 512 x 512
  images; the yardstick is pycocotools' own RLE encoder run on the same region masks alone.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from annotator.formats import ExportOptions, export_project
from annotator.progress import run_job
from annotator.project import Project


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of ``fn()``."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes Python allocated while running ``fn()`` (a separate run: tracing is slow)."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def make_small_images(folder: Path, count: int) -> None:
    """``count`` 64 x 48 PNGs in subfolders of 1,000 (distinct content per image)."""
    base = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    for index in range(count):
        path = folder / f"part{index // 1000:02d}" / f"img{index:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = base.copy()
        pixels[0, :4] = np.frombuffer(index.to_bytes(12, "little"), np.uint8).reshape(4, 3)
        Image.fromarray(pixels).save(path, compress_level=1)


def _open_and_list(folder: Path) -> int:
    with Project.open(folder) as project:
        return len(project.list_images())


def _first_open(folder: Path) -> int:
    shutil.rmtree(folder / ".annotator", ignore_errors=True)
    return _open_and_list(folder)


def _size_pass(folder: Path) -> int:
    with Project.open(folder) as project:
        return run_job(project.read_image_sizes())


def bench_open(root: Path, counts: list[int]) -> None:
    print("== open a folder -> listed project (64 x 48 PNGs in folders of 1,000) ==")
    print(
        f"{'images':>7} {'first open s':>13} {'re-open s':>10} {'first peak MiB':>15} "
        f"{'re-open peak MiB':>17} {'B/image first':>14} {'B/image re-open':>16} {'size pass s':>12}"
    )
    for count in counts:
        folder = root / f"open{count}"
        make_small_images(folder, count)
        first = min(_timed(lambda f=folder: _first_open(f))[0] for _ in range(3))
        again = min(_timed(lambda f=folder: _open_and_list(f))[0] for _ in range(3))
        first_peak = _peak_memory(lambda f=folder: _first_open(f))
        again_peak = _peak_memory(lambda f=folder: _open_and_list(f))
        sizes, read = _timed(lambda f=folder: _size_pass(f))
        assert _first_open(folder) == count and read <= count
        print(
            f"{count:>7} {first:>13.3f} {again:>10.3f} {first_peak / 2**20:>15.1f} "
            f"{again_peak / 2**20:>17.1f} {first_peak / count:>14.0f} {again_peak / count:>16.0f} "
            f"{sizes:>12.2f}"
        )
    print("time = best of 3 (page cache warm); peak = Python heap (tracemalloc, a separate run)")


def _label_map(rng: np.random.Generator, size: int) -> np.ndarray:
    """[size, size] uint8: an 8 x 8 grid of random classes 0..4 (a few dozen regions)."""
    coarse = rng.integers(0, 5, (8, 8)).astype(np.uint8)
    return np.kron(coarse, np.ones((size // 8, size // 8), np.uint8))


def make_labelled_project(folder: Path, count: int, size: int) -> Project:
    rng = np.random.default_rng(1)
    ys, xs = np.mgrid[0:size, 0:size]
    for index in range(count):
        pixels = np.stack([xs % 256, ys % 256, np.full_like(xs, index % 256)], axis=2).astype(
            np.uint8
        )
        Image.fromarray(pixels).save(folder / f"img{index:04d}.jpg", quality=85)
    project = Project.open(folder)
    ids = [project.add_class(name).id for name in ("road", "car", "tree", "sky", "building")]
    for index in range(count):
        project.save_labels(f"img{index:04d}.jpg", np.asarray(ids, np.uint8)[_label_map(rng, size)])
    return project


def rle_yardstick(project: Project) -> tuple[float, float, int]:
    """The same regions through pycocotools' own encoder: seconds for ``mask.encode`` alone,
    seconds for the usual exporter loop (per class connected components, one full-size mask per
    region, ``mask.encode``), and the region count."""
    import cv2
    from pycocotools import mask as mask_utils

    encode_only = whole = 0.0
    regions = 0
    for record in project.list_images(has_labels=True):
        labels = project.load_labels(record.relpath)
        start = time.perf_counter()
        for value in np.unique(labels):
            count, components = cv2.connectedComponents(
                (labels == value).astype(np.uint8), connectivity=8
            )
            masks = [np.asfortranarray((components == i).astype(np.uint8)) for i in range(1, count)]
            encode_start = time.perf_counter()
            for mask in masks:
                mask_utils.encode(mask)
            encode_only += time.perf_counter() - encode_start
            regions += len(masks)
        whole += time.perf_counter() - start
    return encode_only, whole, regions


def bench_export(root: Path, count: int, size: int) -> None:
    print(f"== export {count} labelled {size} x {size} images ==")
    folder = root / "export"
    folder.mkdir()
    start = time.perf_counter()
    project = make_labelled_project(folder, count, size)
    print(
        f"(setup: wrote {count} images and saved their labels in {time.perf_counter() - start:.1f} s)"
    )
    with project:
        for fmt in ("coco", "voc"):
            seconds = _export_seconds(project, fmt, root / f"out-{fmt}")
            print(f"{fmt:>5}: {seconds:6.1f} s  {count / seconds:7.1f} images/s")
        encode, whole, regions = rle_yardstick(project)
        print(
            f"yardstick, the same {regions} regions through pycocotools (no JSON, no file reads):"
        )
        print(f"  mask.encode alone:                           {count / encode:7.1f} images/s")
        print(f"  components + per-region masks + mask.encode: {count / whole:7.1f} images/s")


def _export_seconds(project: Project, fmt: str, out: Path) -> float:
    start = time.perf_counter()
    run_job(export_project(project, fmt, out, ExportOptions()))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--export-images", type=int, default=1_000)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="annotator-bench-") as temp:
        root = Path(temp)
        counts = sorted({max(1, args.images // 4), max(1, args.images // 2), args.images})
        bench_open(root, counts)
        if args.export_images > 0:
            bench_export(root, args.export_images, args.size)


if __name__ == "__main__":
    main()
