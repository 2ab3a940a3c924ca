"""Engine speed and memory, printed from one run (never part of the test run).

    .venv/bin/python benchmarks/engine.py [--threads N] [--runs N] [--presets]

(a) float32 GEMM throughput of this machine (measured alternately with (c)); (b) FLOPs of one 512 x 512 proposal with ViT-B-16
(random weights) and the default head, counted by torch.utils.flop_counter; (c) its warm median
latency; (d) c / (b / a), how far from the GEMM bound (target <= 1.5 on CPU); (e) re-query
latency with 5 new class names on a cached image (target <= 50 ms); (f) peak RSS (target
<= 2.5 GB); (g) on a GPU, 512 x 512 fp16 latency (target <= 25 ms).

``--presets``: one table row per published protocol (``annotator models presets``): FLOPs of a
512 x 512 proposal, warm latency and its ratio to the GEMM bound (GEMM rate measured alternately
with the latency, so both see the same load; the ratio is the median over runs of each run's
latency over the bound from the GEMM rate measured just before it), re-query with 5
already-known names (the names of the last query again: PAMR rows already refined on this image
are reused), re-query with 5 other names whose text is known but which this image has not been
asked for (PAMR refines every row), one brand-new name through the 80 templates (in-memory text
cache only, disk cache off), and peak RSS so far.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from annotator.engine import EngineConfig, Segmenter, create_segmenter

SIZE = 512
CLASSES = ["cat", "dog", "grass", "sky", "road"]


def median_seconds(step: Callable[[], object], runs: int, sync: Callable[[], None]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


_GEMM_SHAPES = ((1025, 768, 3072), (1025, 3072, 768), (2048, 2048, 2048))
_GEMM_OPERANDS = [(torch.randn(m, k), torch.randn(k, n)) for m, k, n in _GEMM_SHAPES]


def gemm_flops_per_second(repeats: int = 3) -> float:
    """Best float32 GEMM rate over shapes like a ViT-B's and a square one (FLOP/s)."""
    best = 0.0
    for a, b in _GEMM_OPERANDS:
        a @ b
        seconds = median_seconds(lambda a=a, b=b: a @ b, repeats, lambda: None)
        best = max(best, 2 * a.shape[0] * a.shape[1] * b.shape[1] / seconds)
    return best


def interleaved(step: Callable[[], object], runs: int) -> tuple[float, float, float]:
    """(median GEMM FLOP/s, median seconds of ``step``, median over runs of seconds x the GEMM
    rate measured just before), measured alternately so that both see the same load from other
    processes on a shared machine; the last figure pairs each run with its own GEMM rate."""
    rates, times = [], []
    for _ in range(runs):
        rates.append(gemm_flops_per_second())
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    paired = statistics.median(rate * seconds for rate, seconds in zip(rates, times, strict=True))
    return statistics.median(rates), statistics.median(times), paired


def new_image(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 255, (SIZE, SIZE, 3), np.uint8)


def propose_once(segmenter: Segmenter, image: np.ndarray) -> None:
    segmenter.clear_cache()
    segmenter.set_image(image)
    segmenter.predict(CLASSES)


def count_cpu_kernels() -> None:
    """torch's counter has no formula for two CPU kernels the engine uses (it counts 0 FLOPs):
    the fused attention (given the formula torch uses for the CUDA kernels) and MKL's GEMM with a
    packed weight (``annotator.engine._packed``: 2 M K N, as for any linear), so neither is left
    out of the bound."""
    from torch.utils.flop_counter import register_flop_formula, sdpa_flop_count

    attention = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if attention is not None:

        @register_flop_formula(attention)
        def _attention(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:  # noqa: ANN001, ANN002, ANN003
            return sdpa_flop_count(query_shape, key_shape, value_shape)

    packed = getattr(getattr(torch.ops, "mkl", None), "_mkl_linear", None)
    if packed is not None:

        @register_flop_formula(packed)
        def _packed(x_shape, packed_shape, weight_shape, *args, out_shape=None, **kwargs) -> int:  # noqa: ANN001, ANN002, ANN003
            return 2 * x_shape[0] * x_shape[1] * weight_shape[0]


def count_flops(segmenter: Segmenter, image: np.ndarray) -> tuple[int, int]:
    """(total FLOPs, of which fused attention) of one proposal, text embeddings cached."""
    segmenter.encode_text(CLASSES)  # as in a labelling session
    with FlopCounterMode(display=False) as counter:
        propose_once(segmenter, image)
    per_op = counter.get_flop_counts().get("Global", {})
    attention = sum(n for op, n in per_op.items() if "scaled_dot_product" in str(op))
    return counter.get_total_flops(), attention


#: Class names a user might type; each re-query takes 5 never seen before (text not cached).
_WORDS = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant "
    "stop_sign bench bird horse sheep cow elephant bear zebra giraffe backpack umbrella handbag "
    "tie suitcase frisbee skis snowboard kite skateboard surfboard bottle cup fork knife spoon "
    "bowl banana apple sandwich orange broccoli carrot pizza donut cake chair couch bed toilet "
    "laptop mouse keyboard microwave oven toaster sink refrigerator book clock vase scissors "
    "solar_panel roof road river tree mould wall floor ceiling window door fence mountain cloud"
)
VOCABULARY = tuple(name.replace("_", " ") for name in _WORDS.split())


def requery_seconds(segmenter: Segmenter, runs: int) -> float:
    names = iter(VOCABULARY)

    def ask() -> None:
        segmenter.predict([next(names) for _ in range(5)])

    return median_seconds(ask, runs, lambda: None)


#: (a)-(g) measure the whole image at 512 with one template and no refinement (as before the
#: presets); ``--presets`` measures each published protocol.
_WHOLE_IMAGE = {"window": 0, "refine": None, "templates": ("a photo of a {}.",)}


def cpu_figures(runs: int) -> None:
    rng = np.random.default_rng(0)
    config = EngineConfig(
        model="ViT-B-16", pretrained=None, device="cpu", short_side=SIZE, **_WHOLE_IMAGE
    )
    segmenter = create_segmenter(config)
    image = new_image(rng)
    count_cpu_kernels()
    flops, attention = count_flops(segmenter, image)
    for _ in range(2):
        propose_once(segmenter, new_image(rng))
    gemm, latency, _ = interleaved(lambda: propose_once(segmenter, new_image(rng)), runs)
    requery = requery_seconds(segmenter, runs)
    bound = flops / gemm
    print(f"(a) float32 GEMM throughput:           {gemm / 1e9:8.1f} GFLOP/s")
    print(
        f"(b) FLOPs of one {SIZE}x{SIZE} proposal:     {flops / 1e9:8.1f} GFLOP "
        f"(ViT-B-16 random init, head {config.head}; {attention / 1e9:.1f} of it attention)"
    )
    print(f"(c) warm median latency:               {latency * 1e3:8.1f} ms")
    print(
        f"(d) c / (b / a):                       {latency / bound:8.2f}   "
        f"(bound {bound * 1e3:.0f} ms; target <= 1.5)"
    )
    print(f"(e) re-query, 5 new class names:       {requery * 1e3:8.1f} ms   (target <= 50 ms)")


def other_names_seconds(segmenter: Segmenter, runs: int) -> float:
    """Median time of a query of 5 names whose text is known but that the current image has
    not been asked for (with PAMR: all 5 rows refined)."""
    chunks = [list(VOCABULARY[5 * run : 5 * run + 5]) for run in range(runs)]
    segmenter.encode_text([name for chunk in chunks for name in chunk])
    pending = iter(chunks)
    return median_seconds(lambda: segmenter.predict(next(pending)), runs, lambda: None)


def new_name_seconds(segmenter: Segmenter, runs: int) -> float:
    """Median time to embed one never-seen name through every template of the preset."""
    names = iter(f"{word} {index}" for index, word in enumerate(VOCABULARY))
    return median_seconds(lambda: segmenter.encode_text([next(names)]), runs, lambda: None)


def preset_row(name: str, runs: int, rng: np.random.Generator) -> str:
    from annotator.engine.presets import config_from_preset

    config = config_from_preset(name, model="ViT-B-16", pretrained="none", device="cpu")
    config.text_cache = False  # a brand-new name must really be encoded
    segmenter = create_segmenter(config)
    flops, _ = count_flops(segmenter, new_image(rng))
    propose_once(segmenter, new_image(rng))
    _, latency, gemm_flop = interleaved(lambda: propose_once(segmenter, new_image(rng)), runs)
    requery = median_seconds(lambda: segmenter.predict(CLASSES), runs, lambda: None)
    other = other_names_seconds(segmenter, runs)
    new_name = new_name_seconds(segmenter, runs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    ratio = gemm_flop / flops  # each run's latency over the GEMM bound of its own moment
    return (
        f"{name:<13} {flops / 1e9:7.1f} {latency * 1e3:9.0f} {ratio:6.2f} "
        f"{requery * 1e3:9.1f} {other * 1e3:9.1f} {new_name * 1e3:9.1f} "
        f"{len(config.templates):4d} {peak:6.2f}"
    )


def preset_table(runs: int, names: list[str] | None = None) -> None:
    from annotator.engine.presets import PRESETS

    count_cpu_kernels()
    rng = np.random.default_rng(2)
    print(f"per preset, ViT-B-16 random init on the CPU, {SIZE}x{SIZE} images, {runs} runs each")
    print("preset         GFLOP  warm ms  ratio  known-5 ms  other-5 ms  1 new ms  tpl  RSS GB")
    for name in names or PRESETS:
        print(preset_row(name, runs, rng), flush=True)
    print("ratio = warm latency / (FLOPs / GEMM rate), target <= 1.5; known-5 target <= 20 ms")
    print("(the same 5 names again); other-5: 5 names with known text, new to this image;")
    print("1 new name (all templates) target <= 250 ms; RSS is the process peak so far")


def gpu_figure(runs: int) -> None:
    if not torch.cuda.is_available():
        print("(g) GPU 512x512 fp16 latency:          skipped (no CUDA GPU on this machine)")
        return
    rng = np.random.default_rng(1)
    config = EngineConfig(
        model="ViT-B-16",
        pretrained=None,
        device="cuda",
        precision="fp16",
        short_side=SIZE,
        **_WHOLE_IMAGE,
    )
    segmenter = create_segmenter(config)
    for _ in range(5):
        propose_once(segmenter, new_image(rng))
    images = [new_image(rng) for _ in range(runs)]
    pending = iter(images)
    latency = median_seconds(
        lambda: propose_once(segmenter, next(pending)), runs, torch.cuda.synchronize
    )
    print(
        f"(g) GPU 512x512 fp16 latency:          {latency * 1e3:8.1f} ms   (target <= 25 ms; "
        f"{torch.cuda.get_device_name()})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--runs", type=int, default=7, help="timed repetitions (at most 15)")
    parser.add_argument("--skip-cpu", action="store_true", help="only the GPU figure")
    parser.add_argument("--presets", action="store_true", help="only the table per preset")
    parser.add_argument(
        "--preset", action="append", dest="names", help="with --presets: only this one (repeatable)"
    )
    args = parser.parse_args()
    args.runs = max(1, min(args.runs, len(VOCABULARY) // 5 - 1))
    if args.threads:
        torch.set_num_threads(args.threads)
    from annotator.engine import _packed, _pamr_parts

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; PAMR: "
        f"{'compiled loops' if _pamr_parts.available() else 'torch operations (not compiled)'}; "
        f"packed linears: {'yes' if _packed._SUPPORTED else 'no (torch without MKL)'}"
    )
    if args.presets:
        preset_table(args.runs, args.names)
        print(f"load average {os.getloadavg()[0]:.1f} at the end (other processes share the CPU)")
        return
    if not args.skip_cpu:
        cpu_figures(args.runs)
    gpu_figure(args.runs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"(f) peak RSS:                          {peak:8.2f} GB   (target <= 2.5 GB)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end (other processes share the CPU)")


if __name__ == "__main__":
    main()
