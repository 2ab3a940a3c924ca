"""Fitting the head on per-pixel samples held in numpy arrays (no project, no engine needed)."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from annotator.errors import JobCancelled
from annotator.progress import Progress, ShouldStop
from training.head import HeadSpec, PixelHead
from training.parallel import SINGLE, Collective


@dataclass
class SampleSet:
    """Training pixels: ``filters`` float32 [N, Ff], ``clip`` float32 [N, D] or None,
    ``labels`` int64 [N] (index into the head's classes), ``weights`` float32 [N]."""

    filters: np.ndarray
    clip: np.ndarray | None
    labels: np.ndarray
    weights: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @staticmethod
    def concatenate(parts: list[SampleSet]) -> SampleSet:
        non_empty = [part for part in parts if len(part)]
        if not non_empty:
            return parts[0]
        parts = non_empty
        clip = (
            None if any(p.clip is None for p in parts) else np.concatenate([p.clip for p in parts])
        )
        return SampleSet(
            filters=np.concatenate([p.filters for p in parts]),
            clip=clip,
            labels=np.concatenate([p.labels for p in parts]),
            weights=np.concatenate([p.weights for p in parts]),
        )


@dataclass(frozen=True)
class FitSettings:
    """Optimiser settings of one fit."""

    steps: int = 300
    batch_size: int = 4096
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU; any other value is passed to torch."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _tensors(samples: SampleSet, device: torch.device) -> tuple[torch.Tensor, ...]:
    filters = torch.from_numpy(samples.filters.astype(np.float32, copy=False)).to(device)
    clip = None
    if samples.clip is not None:
        clip = torch.from_numpy(samples.clip.astype(np.float32, copy=False)).to(device)
    labels = torch.from_numpy(samples.labels.astype(np.int64)).to(device)
    weights = torch.from_numpy(samples.weights.astype(np.float32)).to(device)
    return filters, clip, labels, weights


def _grad_mode() -> contextlib.ExitStack:
    """Autograd on, even when the caller runs the job under ``torch.inference_mode()`` (the
    GUI's engine worker does). Entered per step, never across a ``yield``: grad mode is
    thread-local and must not leak into the caller while the generator is suspended. A step is
    small work: a second torch thread only while another core is idle (on a busy machine every
    hand-off between two threads waits for the scheduler: ~10x slower steps)."""
    from annotator.engine.devices import small_work_threads

    stack = contextlib.ExitStack()
    stack.enter_context(small_work_threads())
    stack.enter_context(torch.inference_mode(False))
    stack.enter_context(torch.enable_grad())
    return stack


@dataclass
class _Trainer:
    head: PixelHead
    optimiser: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    tensors: tuple[torch.Tensor | None, ...]
    generator: torch.Generator
    batch_size: int
    collective: Collective = SINGLE
    model: torch.nn.Module | None = None  # ``head`` as the collective wrapped it (DDP)

    def step(self) -> float:
        """One optimiser step on a global batch drawn alike on every process; each process
        takes its share, and the loss is scaled so that the averaged gradient is the gradient
        of the weighted mean loss over the whole batch. Returns that mean loss."""
        filters, clip, labels, weights = self.tensors
        count = labels.shape[0]
        size = min(self.batch_size, count)
        batch = torch.randint(count, (size,), generator=self.generator)
        mine = batch[self.collective.batch_share(size)].to(labels.device)
        logits = (self.model or self.head)(filters[mine], clip[mine] if clip is not None else None)
        total = (F.cross_entropy(logits, labels[mine], reduction="none") * weights[mine]).sum()
        self.optimiser.zero_grad(set_to_none=True)
        (total * (self.collective.world_size / size)).backward()
        self.optimiser.step()
        self.schedule.step()
        return self.collective.sum(float(total.detach())) / size

    def state(self, step: int) -> dict:
        """Everything the next steps depend on, after ``step`` (tensors on the CPU)."""
        return {
            "step": step,
            "head": {k: v.detach().cpu() for k, v in self.head.state_dict().items()},
            "optimiser": self.optimiser.state_dict(),
            "schedule": self.schedule.state_dict(),
            "generator": self.generator.get_state(),
        }

    def restore(self, state: dict) -> int:
        """Continue from :meth:`state`'s ``state``; returns the step it was taken after."""
        self.head.load_state_dict(state["head"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.schedule.load_state_dict(state["schedule"])
        self.generator.set_state(state["generator"])
        return int(state["step"])


def _trainer(
    spec: HeadSpec,
    samples: SampleSet,
    settings: FitSettings,
    device: torch.device,
    collective: Collective = SINGLE,
) -> _Trainer:
    torch.manual_seed(settings.seed)
    head = PixelHead(spec)
    tensors = _tensors(samples, device)
    head.set_normalisation(tensors[0].cpu())
    head.to(device).train()
    optimiser = torch.optim.AdamW(
        head.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, settings.steps))
    generator = torch.Generator(device="cpu").manual_seed(settings.seed)
    return _Trainer(
        head, optimiser, schedule, tensors, generator, settings.batch_size, collective,
        collective.wrap(head),
    )  # fmt: skip


def fit_head(
    spec: HeadSpec,
    samples: SampleSet,
    settings: FitSettings,
    should_stop: ShouldStop,
    device: torch.device,
    progress_data: dict | None = None,
    collective: Collective = SINGLE,
    checkpoint: Any = None,
) -> Generator[Progress, None, PixelHead]:
    """Train a fresh :class:`PixelHead` on ``samples`` with AdamW and weighted cross-entropy.

    Yields :class:`Progress` every few steps with ``data = {**progress_data, "step", "loss"}``;
    raises :class:`JobCancelled` as soon as ``should_stop()`` is true. Returns the head in eval
    mode on the CPU. Safe to drive from a thread in ``torch.inference_mode()``. With a
    ``collective`` of several processes (each holding the same ``samples``), the gradients are
    averaged over them (DDP) and every process returns the same head. A ``checkpoint``
    (:class:`training.checkpoint.RoundCheckpoint`) is saved every ``checkpoint.every`` steps and,
    when it holds a state, the fit goes on from there: the result equals an uninterrupted fit.
    """
    if len(samples) == 0:
        raise ValueError("no training pixels")
    with _grad_mode():
        trainer = _trainer(spec, samples, settings, device, collective)
        state = checkpoint.load() if checkpoint is not None else None
        done = trainer.restore(state) if state is not None else 0
    report_every = max(1, min(10, settings.steps // 50))
    for step in range(done + 1, settings.steps + 1):
        if should_stop():
            raise JobCancelled("Retraining was cancelled; the previous model version stays active.")
        with _grad_mode():
            loss = trainer.step()
        if checkpoint is not None and step % checkpoint.every == 0 and step < settings.steps:
            checkpoint.save(trainer.state(step))
        if step % report_every == 0 or step == settings.steps:
            data = {**(progress_data or {}), "step": step, "loss": loss}
            yield Progress(
                step, settings.steps, f"step {step}/{settings.steps}, loss {loss:.4f}", data
            )
    return trainer.head.cpu().eval()
