"""Training the segment decoder on a project's human segments (Qt-free, a Progress generator)."""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from annotator.engine.devices import limited_threads
from annotator.errors import JobCancelled
from annotator.progress import Progress, ShouldStop
from training.zegformer.decoder import DecoderSpec, MaskDecoder
from training.zegformer.losses import segment_loss


@dataclass(frozen=True)
class DecoderSettings:
    """Optimiser and size of the decoder: ``steps`` (one image each), ``learning_rate``,
    ``hidden`` width, mask ``stride`` relative to the working image, ``seed``."""

    steps: int = 150
    learning_rate: float = 3e-3
    hidden: int = 32
    stride: int = 2
    seed: int = 0


@dataclass
class SegmentSample:
    """One labelled image for the decoder.

    ``filters`` float32 ``[Ff, h, w]`` and ``clip`` ``[D, gh, gw]`` (or None) at the working
    resolution; ``targets`` float32 ``[G, P]`` binary human segments (one per class present) and
    ``valid`` ``[P]`` at the decoder's ``1 / stride`` resolution (P pixels, rows first);
    ``classes`` int64 ``[G]`` positions of their classes in the prompt list.
    """

    filters: torch.Tensor
    clip: torch.Tensor | None
    targets: torch.Tensor
    valid: torch.Tensor
    classes: torch.Tensor


def grad_mode() -> contextlib.ExitStack:
    """Autograd on even under the engine worker's ``inference_mode`` (entered per step)."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode(False))
    stack.enter_context(torch.enable_grad())
    return stack


def build_sample(
    filters: np.ndarray, clip: np.ndarray | None, truth: np.ndarray, stride: int
) -> SegmentSample | None:
    """A sample from filters, CLIP features and ``truth`` int64 ``[h, w]`` (class positions,
    -1 = unlabelled); None when nothing is labelled."""
    present = [int(c) for c in np.unique(truth) if c >= 0]
    if not present:
        return None
    with grad_mode():
        onehot = torch.from_numpy(np.stack([truth == c for c in present] + [truth >= 0]))
        pooled = F.avg_pool2d(onehot.float()[None], stride, ceil_mode=True)[0]
        binary = (pooled >= 0.5).float().flatten(1)
        clip_t = None if clip is None else torch.from_numpy(np.array(clip, np.float32))
        return SegmentSample(
            torch.from_numpy(np.array(filters, np.float32)),
            clip_t,
            binary[:-1],
            binary[-1],
            torch.tensor(present, dtype=torch.long),
        )


def _create(spec: DecoderSpec, samples: Sequence[SegmentSample], seed: int) -> MaskDecoder:
    torch.manual_seed(seed)
    decoder = MaskDecoder(spec)
    flat = torch.cat(
        [s.filters.flatten(1).T[:: max(1, s.filters[0].numel() // 4096)] for s in samples]
    )
    decoder.set_normalisation(flat)
    return decoder.train()


def _step(
    decoder: MaskDecoder, optimiser: Any, sample: SegmentSample, text: torch.Tensor | None
) -> float:
    logits, embeddings = decoder(sample.filters, sample.clip)
    class_logits = None
    if embeddings is not None and text is not None:
        class_logits = decoder.class_logits(embeddings, text)
    loss = segment_loss(
        logits.flatten(1), class_logits, sample.targets, sample.classes, sample.valid
    )
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return float(loss.detach())


def fit_decoder(
    spec: DecoderSpec,
    samples: Sequence[SegmentSample],
    text: np.ndarray | None,
    settings: DecoderSettings,
    should_stop: ShouldStop,
) -> Generator[Progress, None, MaskDecoder]:
    """Train a fresh decoder: per step one image, Hungarian matching, focal + dice (+ class CE
    over the prompts' text embeddings ``text`` ``[C, D]`` and "no object"). Yields Progress
    with ``data = {"phase": "segments", "step", "segment_loss"}``; returns it in eval mode."""
    with grad_mode():
        decoder = _create(spec, samples, settings.seed)
        optimiser = torch.optim.AdamW(decoder.parameters(), lr=settings.learning_rate)
        text_t = None if text is None else torch.from_numpy(np.array(text, np.float32))
    order = np.random.default_rng(settings.seed)
    for step in range(1, settings.steps + 1):
        if should_stop():
            raise JobCancelled("Retraining was cancelled; the previous model version stays active.")
        sample = samples[int(order.integers(len(samples)))]
        with grad_mode(), limited_threads(1):  # tiny ops: thread hand-offs cost more than work
            loss = _step(decoder, optimiser, sample, text_t)
        if step % 10 == 0 or step == settings.steps:
            data = {"phase": "segments", "step": step, "segment_loss": loss}
            yield Progress(step, settings.steps, f"segment decoder step {step}", data)
    return decoder.eval()
