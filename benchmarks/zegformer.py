"""ZegFormer proposer speed against the dense proposer, printed from one run (not a test).

    .venv/bin/python benchmarks/zegformer.py [--runs N] [--threads N] [--model ViT-B-16]

Per-image latency at 512 x 512 (a new image every run, so encoding is included) of the dense
proposer and of the zegformer proposer with ``--segment-score pool`` and ``crop``, each split into
encoding+logits / grouping / scoring / fusion, and the ratio to dense (target on CPU <= 2x).
Runs are interleaved (dense, pool, crop, dense, ...) so all see the same load on a shared
machine. On a GPU (when present) the same figures follow. Random weights: speed only.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from annotator.engine import EngineConfig, create_segmenter

SIZE = 512
CLASSES = ["cat", "dog", "grass", "sky", "road"]
KINDS = {
    "dense": {},
    "zegformer-pool": {"segment_score": "pool"},
    "zegformer-crop": {"segment_score": "crop"},
}


def _segmenters(model: str, device: str, threads: int | None) -> dict:
    made = {}
    for kind, extra in KINDS.items():
        proposer = "dense" if kind == "dense" else "zegformer"
        config = EngineConfig(
            model=model, pretrained=None, device=device, threads=threads, proposer=proposer,
            **extra,
        )  # fmt: skip
        made[kind] = create_segmenter(config)
    return made


def _one(segmenter, image: np.ndarray, sync) -> dict[str, float]:  # noqa: ANN001
    start = time.perf_counter()
    segmenter.set_image(image)
    segmenter.predict(CLASSES)
    sync()
    total = time.perf_counter() - start
    parts = dict(getattr(segmenter.proposer, "timings", {}))
    return {"total": total, **parts}


def measure(model: str, device: str, runs: int, threads: int | None) -> dict[str, dict]:
    """Median seconds per kind and part over ``runs`` interleaved rounds (after one warm-up)."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    segmenters = _segmenters(model, device, threads)
    rng = np.random.default_rng(0)
    samples: dict[str, list[dict]] = {kind: [] for kind in segmenters}
    for round_index in range(runs + 1):
        image = rng.integers(0, 255, (SIZE, SIZE, 3), np.uint8)
        for kind, segmenter in segmenters.items():
            result = _one(segmenter, image, sync)
            if round_index:  # the first round warms up every path
                samples[kind].append(result)
    return {
        kind: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for kind, rows in samples.items()
    }


def report(figures: dict[str, dict], device: str) -> None:
    dense = figures["dense"]["total"]
    print(f"\n{device}: per-image latency at {SIZE} x {SIZE} (median), classes {len(CLASSES)}")
    for kind, parts in figures.items():
        split = ", ".join(
            f"{key} {1000 * parts[key]:.0f} ms"
            for key in ("grouping", "scoring", "fusion")
            if key in parts
        )
        encode = parts["total"] - sum(parts.get(k, 0.0) for k in ("grouping", "scoring", "fusion"))
        print(
            f"  {kind:15s} {1000 * parts['total']:7.0f} ms  ({parts['total'] / dense:.2f}x dense)"
            f"  encode+logits {1000 * encode:.0f} ms{'; ' + split if split else ''}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--model", default="ViT-B-16")
    args = parser.parse_args()
    report(measure(args.model, "cpu", args.runs, args.threads), "cpu")
    if torch.cuda.is_available():
        report(measure(args.model, "cuda", max(args.runs, 5), None), "cuda")
    print("\n(a shared machine: compare ratios measured in this run, not absolute times)")


if __name__ == "__main__":
    main()
