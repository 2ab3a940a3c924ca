"""Cost of the MCIBI class memory on the CPU, printed from one run (never part of the test run).

    .venv/bin/python benchmarks/memory.py [--runs N] [--threads N]

ViT-B-16 with random weights (no download; timings do not depend on the values) at the default
working resolution, one 512 x 512 image, 5 classes of which 3 have memory:

(a) a memory update for one saved image, its features already cached by the proposal that came
    before (``learn_labels``: label histogram per patch, similarity-weighted momentum, centre);
    target <= 5 ms;
(b) the same update when labels changed and the file is written (``memory.save``);
(c) ``predict`` on the cached image without and (d) with the memory adapter; (d - c) is the extra
    cost per proposal, target <= 10 ms.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch

from annotator.engine import EngineConfig, create_segmenter
from annotator.engine.memory import ClassMemory, MemoryAdapter, learn_labels, memory_key

SIZE = 512
CLASSES = ["cat", "dog", "grass", "sky", "road"]


def median_ms(step: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def labelled_image(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random image and a label map with 3 labelled classes (ids 0..2) and unlabelled rest."""
    image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    labels = np.full((SIZE, SIZE), 255, np.uint8)
    labels[: SIZE // 2] = 0
    labels[SIZE // 2 :, : SIZE // 2] = 1
    labels[SIZE // 2 : 3 * SIZE // 4, SIZE // 2 :] = 2
    return image, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    segmenter = create_segmenter(EngineConfig(pretrained=None, device="cpu", threads=args.threads))
    rng = np.random.default_rng(0)
    image, labels = labelled_image(rng)
    segmenter.set_image(image)
    segmenter.predict(CLASSES)  # the proposal before a save: features now cached
    memory = ClassMemory(memory_key(segmenter))
    learn_labels(memory, segmenter, image, labels, 255, "first.png")
    counter = iter(range(10**9))

    def update() -> None:  # a new relpath each time: a real update, never skipped
        learn_labels(memory, segmenter, image, labels, 255, f"img{next(counter)}.png")

    folder = tempfile.mkdtemp(prefix="memory-bench-")

    def update_and_save() -> None:
        update()
        memory.save(folder)

    names = dict(enumerate(CLASSES))
    adapter = MemoryAdapter(memory, names, segmenter.config.logit_scale, segmenter.patch_size)
    plain = median_ms(lambda: segmenter.predict(CLASSES), args.runs)
    with_memory = median_ms(lambda: segmenter.predict(CLASSES, adapter=adapter), args.runs)
    plain_again = median_ms(lambda: segmenter.predict(CLASSES), args.runs)
    print(f"torch threads: {torch.get_num_threads()}; features {memory.dim} x "
          f"{'x'.join(map(str, segmenter.image_features(image).shape[1:]))}")  # fmt: skip
    print(
        f"(a) memory update per saved {SIZE}x{SIZE} image:       {median_ms(update, args.runs):6.2f} ms  (target <= 5)"
    )
    print(
        f"(b) update + write memory.npz:                    {median_ms(update_and_save, args.runs):6.2f} ms"
    )
    print(
        f"(c) predict, 5 classes, cached image, no memory:  {(plain + plain_again) / 2:6.2f} ms  ({plain:.2f} / {plain_again:.2f})"
    )
    print(f"(d) predict with memory (3 classes remembered):   {with_memory:6.2f} ms")
    print(f"    extra cost per proposal (d - c):              {with_memory - (plain + plain_again) / 2:6.2f} ms  (target <= 10)")  # fmt: skip


if __name__ == "__main__":
    main()
