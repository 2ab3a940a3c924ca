"""Work split into contiguous parts run at once on threads of this process (CPU only).

For loops that release the GIL (PAMR's compiled kernels): one part runs on the calling thread,
the others on a small pool, each single-threaded (torch's threads set to 1 while the parts run);
the parts are independent, so each element is computed exactly as on one thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

#: At most this many parts run at once.
MAX_PARTS = 8

#: Per process id: the pool's threads (a forked child, such as a Ray or multiprocessing worker,
#: has none of its parent's threads, so it gets its own pool).
_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool() -> ThreadPoolExecutor:
    pid = os.getpid()
    if pid not in _POOLS:
        _POOLS[pid] = ThreadPoolExecutor(MAX_PARTS - 1, thread_name_prefix="annotator-part")
    return _POOLS[pid]


def bounds(count: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ranges ``(first, last)`` covering ``range(count)`` (sizes differ by at
    most one; fewer ranges when ``count < parts``)."""
    parts = max(1, min(parts, MAX_PARTS, count))
    edges = [count * index // parts for index in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _single_threaded(
    part: Callable[[int, int], None], first: int, last: int, inference: bool
) -> None:
    """``part(first, last)`` on a pool thread, in the caller's autograd modes (thread-local)."""
    torch.set_num_threads(1)  # this pool thread's own setting (torch work inside a part)
    with torch.inference_mode(inference), torch.no_grad():
        part(first, last)


def run_parts(part: Callable[[int, int], None], count: int, parts: int) -> None:
    """``part(first, last)`` for each of :func:`bounds` ``(count, parts)`` at once; returns when
    all are done (the first error raised by a part is raised here). Parts run without autograd,
    in inference mode when the caller is."""
    ranges = bounds(count, parts)
    if len(ranges) == 1:
        part(*ranges[0])
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        inference = torch.is_inference_mode_enabled()
        others = [_pool().submit(_single_threaded, part, a, b, inference) for a, b in ranges[1:]]
        try:
            part(*ranges[0])
        finally:
            errors = [other.exception() for other in others]
        for error in errors:
            if error is not None:
                raise error
    finally:
        torch.set_num_threads(previous)
