"""Work split into contiguous parts run at once on threads of this process (CPU only).

torch's own CPU parallelism makes every thread wait at a barrier after each operation; on a
2-core machine shared with other programs one late thread stalls them all (a 442-row matrix
product on 2 threads then ran at 35 GFLOP/s; as two single-threaded halves at 56). Here each part
runs single-threaded (torch's threads set to 1 while the parts run), one part on the calling
thread and the others on a small pool; the parts are independent, so each element is computed
exactly as on one thread.
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


#: Matrix products and attention with fewer rows (tokens) than this run as one torch operation.
MIN_ROWS = 256


def parts_for(values: torch.Tensor, rows: int) -> int:
    """How many parts to split work on ``values`` of ``rows`` rows into: torch's thread count on
    the CPU, without autograd (the parts write into preallocated outputs), from
    :data:`MIN_ROWS` rows; else 1."""
    if values.device.type != "cpu" or rows < MIN_ROWS or torch.is_grad_enabled():
        return 1
    return torch.get_num_threads()


def linear(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(inputs, weight, bias)`` for ``inputs`` ``[..., K]``, rows split among threads."""
    flat = inputs.reshape(-1, inputs.shape[-1])
    parts = parts_for(inputs, flat.shape[0])
    if parts == 1:
        return torch.nn.functional.linear(inputs, weight, bias)
    out = flat.new_empty(flat.shape[0], weight.shape[0])

    def part(first: int, last: int) -> None:
        if bias is None:
            torch.mm(flat[first:last], weight.t(), out=out[first:last])
        else:
            torch.addmm(bias, flat[first:last], weight.t(), out=out[first:last])

    run_parts(part, flat.shape[0], parts)
    return out.view(*inputs.shape[:-1], weight.shape[0])


def add_product(start: torch.Tensor, inputs: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``start + inputs @ weight.T`` for ``start`` ``[R, N]`` (overwritten) and ``inputs``
    ``[R, K]``, rows split among threads."""
    parts = parts_for(inputs, start.shape[0])
    if parts == 1:
        return torch.addmm(start, inputs, weight.t())

    def part(first: int, last: int) -> None:
        start[first:last].addmm_(inputs[first:last], weight.t())

    run_parts(part, start.shape[0], parts)
    return start


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` of ``[B, H, T, d]`` with heads split among threads
    (when ``bias`` is ``None``, ``[T, S]`` or ``[B, 1, T, S]``: the same for every head)."""
    batch, heads = q.shape[:2]
    parts = parts_for(q, q.shape[2])
    per_head = bias is not None and bias.dim() > 2 and not (bias.dim() == 4 and bias.shape[1] == 1)
    if parts == 1 or per_head:
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    out = q.new_empty(batch, heads, q.shape[2], v.shape[3])

    def part(first: int, last: int) -> None:
        sub = (t[:, first:last] for t in (q, k, v))
        out[:, first:last] = torch.nn.functional.scaled_dot_product_attention(*sub, attn_mask=bias)

    run_parts(part, heads, parts)
    return out
