"""Choosing the device, the precision and the CPU thread count."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager

import torch

from annotator.engine.config import EngineConfigError

_PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def select_device(name: str = "auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; anything else must be available here."""
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise EngineConfigError(f"Unknown device {name!r}; use auto, cpu, cuda or mps") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineConfigError(
            "--device cuda was asked for, but no CUDA GPU is usable here; use --device auto or cpu"
        )
    if device.type == "mps" and not _mps_available():
        raise EngineConfigError("--device mps was asked for, but Metal is not available here")
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def select_dtype(precision: str, device: torch.device) -> torch.dtype:
    """``"auto"`` = fp16 autocast on GPUs, fp32 on CPU; or one of fp32, fp16, bf16."""
    precision = precision.strip().lower()
    if precision == "auto":
        return torch.float32 if device.type == "cpu" else torch.float16
    if precision not in _PRECISIONS:
        raise EngineConfigError(f"Unknown precision {precision!r}; use auto, fp32, fp16 or bf16")
    return _PRECISIONS[precision]


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Mixed precision for the encoders when ``dtype`` is not float32; a no-op otherwise."""
    if dtype == torch.float32:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def set_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads for torch (``None`` keeps torch's choice)."""
    if threads is not None and threads > 0:
        torch.set_num_threads(threads)


#: glibc ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Make glibc's malloc keep freed tensor memory for reuse instead of returning it to the OS.

    By default a tensor of more than a few MB (every activation of a ViT-B at 512 x 512) is
    ``mmap``-ed and unmapped when freed, so the next one page-faults all its pages in again:
    ~60,000 faults (~240 MB of zeroed pages) per encoded image. Blocks up to ``mmap_threshold``
    bytes now come from the heap, which is trimmed only when ``trim_threshold`` bytes are free at
    its top. Process-wide and only on glibc Linux; returns whether it applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )


def is_out_of_memory(error: BaseException) -> bool:
    """True for GPU out-of-memory errors and CPU allocation failures."""
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    message = str(error).lower()
    return isinstance(error, RuntimeError) and (
        "out of memory" in message or "can't allocate memory" in message
    )


def empty_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


@contextlib.contextmanager
def limited_threads(threads: int) -> Iterator[None]:
    """Run the enclosed torch CPU work on at most ``threads`` threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, min(threads, previous)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def idle_cores() -> int:
    """CPU cores that no other process's runnable task is using at this instant (Linux), ``0``
    when unknown.

    Reads the kernel's count of runnable tasks (``/proc/loadavg``; the load average lags a minute
    behind) and leaves out this process's own runnable threads: torch's workers spin for a few
    milliseconds after each parallel region, which must not make the other core look busy.
    """
    try:
        with open("/proc/loadavg", encoding="ascii") as handle:
            running = int(handle.read().split()[3].split("/")[0])
        cores = len(os.sched_getaffinity(0))
        own = _own_running_threads()
    except (OSError, ValueError, IndexError, AttributeError):
        return 0
    return max(0, cores - 1 - max(0, running - own))


def _own_running_threads() -> int:
    """How many threads of this process are runnable (state ``R``), the caller included."""
    count = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat", encoding="ascii", errors="replace") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):  # the thread ended meanwhile
            continue
        count += state == "R"
    return max(1, count)


def small_work_threads() -> AbstractContextManager:
    """Threads for small CPU work (a text pass over a few dozen tokens, a few-class prediction):
    two while another core is idle right now, else one.

    On an idle 2-core machine a second thread makes re-querying 5 class names ~20% faster. When
    another process holds that core, every hand-off between torch's threads waits for the
    scheduler: encoding 5 names then took ~1 s with two threads and ~0.1 s with one.
    """
    return limited_threads(2 if idle_cores() > 0 else 1)
