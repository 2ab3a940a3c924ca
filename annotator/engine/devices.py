"""Choosing the device, the precision and the CPU thread count."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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
def single_thread() -> Iterator[None]:
    """Run small CPU work (a few dozen text tokens) on one thread.

    Waking and joining torch's worker threads costs more than such work itself, and far more on a
    busy machine: encoding 5 class names took ~1 s with 2 threads and ~0.1 s with one while other
    processes used the cores.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
