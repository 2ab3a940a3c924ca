"""PAMR's two loops compiled with numba (optional): the same arithmetic as the torch version in
:mod:`annotator.engine.refine`, one pass over memory instead of one per operation.

Both kernels read and write the flat, replicate-padded buffers of
:class:`~annotator.engine.refine._Grid` (numpy views of the torch tensors, no copies): the pixel
``(y, x)`` is at flat index ``start + y * row + pad + x`` and its neighbour ``n`` at that index
plus ``offsets[n]``. Only image pixels are computed (padding columns are left as they are);
loops run along rows, so the innermost loop reads contiguous memory and the compiler vectorises
it. Rows are split among threads (:func:`annotator.engine._threads.run_parts`).

On one CPU core this takes about half the time of the torch ops (which make a pass over a band
of rows each: ~150 passes for the weights, 160 per 10 steps); 512 x 512 with 5 classes: 27 ms
instead of 58 for the weights (of which 14 are torch's exp and sum), 39 instead of 68 for the
10 steps. numba compiles the kernels on first use and caches them on disk (``cache=True``), so a
machine pays the compilation (~5 s) once; loading them costs ~0.6 s once per process. Without
numba (:func:`available` is False) the torch version runs; both agree to float32 rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

try:  # an optional dependency: without it PAMR runs as torch ops
    import numba
except ImportError:  # pragma: no cover - numba is installed with the package
    numba = None


def available() -> bool:
    """Whether the compiled kernels can run (numba is installed)."""
    return numba is not None


def scores(
    flat: np.ndarray,
    out: np.ndarray,
    first_row: int,
    grid: tuple[int, int, int, int],
    window: np.ndarray,
    neighbours: np.ndarray,
    threads: int = 1,
) -> None:
    """PAMR's affinity scores (before the softmax) of image rows ``first_row ..`` into ``out``.

    ``flat`` float64 ``[K, size]`` the padded image; ``out`` float64 ``[N, rows * row]`` (a band of
    the flat strip, padding columns left untouched); ``grid`` ``(start, row, pad, width)``;
    ``window`` int64 ``[S]`` the flat offsets of the std's samples, ``neighbours`` int64 ``[N]``.
    Score ``n`` of a pixel: ``-mean_c |I_n - I_p| / (1e-8 + 0.1 sigma_p)``, sigma the unbiased
    std of the window samples (two passes: mean, then squared deviations). ``threads``: rows
    split among that many threads.
    """
    row = grid[1]

    def part(first: int, last: int) -> None:
        _SCORES(
            flat, out[:, first * row : last * row], first_row + first, *grid, window, neighbours
        )

    _in_parts(part, out.shape[1] // row, threads)


def step(
    source: np.ndarray,
    target: np.ndarray,
    weights: np.ndarray,
    grid: tuple[int, int, int, int],
    height: int,
    offsets: np.ndarray,
    threads: int = 1,
) -> None:
    """One PAMR step: every image pixel of ``target`` float32 ``[C, size]`` gets the sum over
    neighbours ``n`` of ``weights[n]`` (float32 ``[N, H * row]``) times ``source`` at ``offsets[n]``,
    summed in the order of ``offsets`` (as the torch version does); rows split among ``threads``
    threads."""

    def part(first: int, last: int) -> None:
        _STEP(source, target, weights, *grid, first, last, offsets)

    _in_parts(part, height, threads)


def _in_parts(part: Callable[[int, int], None], rows: int, threads: int) -> None:
    """``part(first, last)`` over ``rows`` rows in ``threads`` parts at once (the kernels release
    the GIL)."""
    from annotator.engine._threads import run_parts

    run_parts(part, rows, threads)


def _scores(flat, out, first_row, start, row, pad, width, window, neighbours):  # noqa: ANN001, ANN202
    # Every array is indexed through 1-D row views from 0: no negative-index checks, so the
    # innermost loops vectorise.
    channels, count = flat.shape[0], neighbours.shape[0]
    mean = np.empty(width)
    spread = np.empty(width)
    scale = np.empty((channels, width))
    for band_row in range(out.shape[1] // row):
        origin = start + (first_row + band_row) * row + pad
        column = band_row * row + pad
        for c in range(channels):
            _inverse_scale(flat[c], origin, window, mean, spread, scale[c], channels)
        for n in range(count):
            score = out[n, column : column + width]
            for c in range(channels):
                centre = flat[c, origin : origin + width]
                other = flat[c, origin + neighbours[n] : origin + neighbours[n] + width]
                factor = scale[c]
                if c == 0:
                    for x in range(width):
                        score[x] = abs(other[x] - centre[x]) * factor[x]
                else:
                    for x in range(width):
                        score[x] += abs(other[x] - centre[x]) * factor[x]


def _inverse_scale(values, origin, window, mean, spread, scale, channels):  # noqa: ANN001, ANN202
    """``-1 / (K * (1e-8 + 0.1 * sigma))`` along one row of one channel (two-pass sigma)."""
    width, samples = mean.shape[0], window.shape[0]
    mean[:] = 0.0
    for s in range(samples):
        sample = values[origin + window[s] : origin + window[s] + width]
        for x in range(width):
            mean[x] += sample[x]
    for x in range(width):
        mean[x] /= samples
    spread[:] = 0.0
    for s in range(samples):
        sample = values[origin + window[s] : origin + window[s] + width]
        for x in range(width):
            deviation = sample[x] - mean[x]
            spread[x] += deviation * deviation
    for x in range(width):
        scale[x] = -1.0 / (channels * (1e-8 + 0.1 * math.sqrt(spread[x] / (samples - 1))))


def _step(source, target, weights, start, row, pad, width, first, last, offsets):  # noqa: ANN001, ANN202
    # Per image row: each neighbour's weights are read once for all channels.
    channels, count = source.shape[0], offsets.shape[0]
    total = np.empty((channels, width), np.float32)
    for y in range(first, last):
        origin = start + y * row + pad
        column = y * row + pad
        for n in range(count):
            weight = weights[n, column : column + width]
            at = origin + offsets[n]
            for c in range(channels):
                shifted, sums = source[c, at : at + width], total[c]
                if n == 0:
                    for x in range(width):
                        sums[x] = shifted[x] * weight[x]
                else:
                    for x in range(width):
                        sums[x] += shifted[x] * weight[x]
        for c in range(channels):
            target[c, origin : origin + width] = total[c]


def _compile(function: Callable[..., Any]) -> Callable[..., Any]:
    return numba.njit(cache=True, nogil=True, error_model="numpy")(function) if numba else function


_inverse_scale = _compile(_inverse_scale)  # compiled first: _scores calls it
_SCORES, _STEP = _compile(_scores), _compile(_step)
