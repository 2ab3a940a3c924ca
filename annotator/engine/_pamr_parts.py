"""PAMR's loops through the compiled module ``_pamr_native`` (built with the package when a C
compiler is there; without it :func:`available` is False and the torch operations run).

torch makes a pass over memory per operation (~150 for the weights, 160 per 10 steps); the C
loops make one per block of a row, with a vectorisable ``exp``. 512 x 512, 5 classes, best of 10:
one core, weights 26 ms instead of 56, 10 steps 30 instead of 61; two cores, 18 instead of 49
and 22 instead of 43. The weights split image
rows among threads, the steps split classes (independent, so no thread waits for another
between steps); the module releases the GIL. Before handing a tensor's address to C,
:func:`_check` and :func:`_check_rows` make sure it has the size, dtype and layout the loops
assume, so a bad call raises ``ValueError`` instead of reading past a buffer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor

try:
    from annotator.engine import _pamr_native
except ImportError:  # no compiler when the package was installed: the torch version runs
    _pamr_native = None

#: Per process id: the pool (a forked child, such as a Ray worker, has none of its parent's
#: threads, so it gets its own).
_POOLS: dict[int, ThreadPoolExecutor] = {}
_MAX_THREADS = 8
#: The most image channels the compiled weights take (``MAX_CHANNELS`` in the C source).
MAX_CHANNELS = 8


def available() -> bool:
    """Whether the compiled loops are installed."""
    return _pamr_native is not None


def _pool() -> ThreadPoolExecutor:
    pid = os.getpid()
    if pid not in _POOLS:
        _POOLS[pid] = ThreadPoolExecutor(_MAX_THREADS - 1, thread_name_prefix="annotator-pamr")
    return _POOLS[pid]


def _ranges(count: int, parts: int) -> list[tuple[int, int]]:
    parts = max(1, min(parts, _MAX_THREADS, count))
    edges = [count * index // parts for index in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _in_parts(work: Callable[[int, int], None], count: int) -> None:
    """``work(first, last)`` over ``range(count)`` (rows or classes) in ranges, one per torch CPU
    thread, the first on the calling thread."""
    ranges = _ranges(count, torch.get_num_threads())
    futures = [_pool().submit(work, first, last) for first, last in ranges[1:]]
    work(*ranges[0])
    for future in futures:
        future.result()


def _check(tensor: Tensor, dtype: torch.dtype, shape: tuple[int, ...]) -> int:
    if (
        tensor.device.type != "cpu"
        or tensor.dtype != dtype
        or tuple(tensor.shape) != shape
        or not tensor.is_contiguous()
    ):
        raise ValueError(
            f"PAMR buffer: expected a contiguous CPU {dtype} tensor of shape {shape}, got "
            f"{tensor.dtype} {tuple(tensor.shape)} on {tensor.device}"
        )
    return tensor.data_ptr()


def _check_rows(tensor: Tensor, shape: tuple[int, int]) -> tuple[int, int]:
    """(address, row stride) of float32 rows ``shape`` whose rows may be spaced apart."""
    rows, length = shape
    stride = tensor.stride(0) if tensor.dim() == 2 else 0
    inside = tensor.storage_offset() + (rows - 1) * stride + length
    if (
        tensor.device.type != "cpu"
        or tensor.dtype != torch.float32
        or tuple(tensor.shape) != shape
        or tensor.stride(1) != 1
        or stride < length
        or inside * 4 > tensor.untyped_storage().nbytes()
    ):
        raise ValueError(
            f"PAMR weights: expected CPU float32 rows of shape {shape}, got {tensor.dtype} "
            f"{tuple(tensor.shape)} strides {tensor.stride()} on {tensor.device}"
        )
    return tensor.data_ptr(), stride


def weight_rows(neighbours: int, length: int) -> Tensor:
    """Zeroed float32 ``[neighbours, length]`` whose rows are a cache line more than a multiple
    of 128 bytes apart (rows spaced by a multiple of 4 KiB evict each other from the L1 cache,
    which made the C loops three times slower on 512-pixel-wide images)."""
    stride = (length + 31) // 32 * 32 + 16
    return torch.zeros(neighbours, stride)[:, :length]


def _offsets(values: Sequence[int], reach: int) -> Tensor:
    offsets = torch.tensor(list(values), dtype=torch.int64)
    if offsets.numel() < 2 or int(offsets.abs().max()) > reach:
        raise ValueError(f"PAMR offsets {list(values)} reach outside the padding ({reach})")
    return offsets


def weights(
    flat: Tensor, out: Tensor, grid: object, window: Sequence[int], neighbours: Sequence[int]
) -> None:
    """The softmax neighbour weights of every image pixel into ``out`` float32 ``[N, strip]``
    (rows may be spaced apart: :func:`weight_rows`), from ``flat`` float64 ``[K, size]`` (the
    padded image of ``grid``, a ``refine._Grid``)."""
    reach = grid.pad * grid.row + grid.pad
    samples, offsets = _offsets(window, reach), _offsets(neighbours, reach)
    channels = flat.shape[0]
    flat_address = _check(flat, torch.float64, (channels, grid.size))
    out_address, stride = _check_rows(out, (len(offsets), grid.strip))

    def work(first: int, last: int) -> None:
        _pamr_native.weights(
            flat_address, grid.size, channels, out_address, stride, first, last,
            grid.start, grid.row, grid.pad, grid.width,
            samples.data_ptr(), len(samples), offsets.data_ptr(), len(offsets),
        )  # fmt: skip

    _in_parts(work, grid.height)


def steps(buffers: list[Tensor], weights: Tensor, grid: object, neighbours: Sequence[int],
          count: int) -> Tensor:  # fmt: skip
    """``count`` PAMR steps between the two float32 ``[C, size]`` ``buffers`` (the first holds
    the padded values, edges replicated); returns the buffer holding the result. Channels are
    independent, so each thread takes a range of them through all the steps."""
    offsets = _offsets(neighbours, grid.pad * grid.row + grid.pad)
    channels = buffers[0].shape[0]
    first, second = (_check(buffer, torch.float32, (channels, grid.size)) for buffer in buffers)
    weights_address, stride = _check_rows(weights, (len(offsets), grid.strip))

    def work(low: int, high: int) -> None:
        _pamr_native.propagate(
            first, second, grid.size, low, high, weights_address, stride, grid.height,
            grid.start, grid.row, grid.pad, grid.width, offsets.data_ptr(), len(offsets), count,
        )  # fmt: skip

    _in_parts(work, channels)
    return buffers[count % 2]
