"""Training the embedding head on a folder's cached features and mask proposals."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import torch

from training.filters import compute_filter_features
from training.grouping._cache import CachedImage
from training.grouping.config import GroupConfig
from training.grouping.features import GROUPING_FILTERS, upsample_clip
from training.grouping.head import (
    EmbeddingHead,
    PrototypeBank,
    balanced_bce,
    contrastive_loss,
    mask_prototypes,
)

#: Smallest part of a mask inside a crop that still gets a prototype (pixels).
_MIN_MASK_PIXELS = 8
_MAX_QUERY_PIXELS = 4096


def head_input(item: CachedImage, filters: np.ndarray | None = None) -> np.ndarray:
    """float32 [C, h, w]: filter features (``filters`` or the cached ones) then, with CLIP,
    the dense CLIP features upsampled to the grouping grid."""
    planes = item.features.filters if filters is None else filters
    if item.features.clip is None:
        return planes
    return np.concatenate([planes, upsample_clip(item.features.clip, item.features.size)])


def jitter_colours(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A photometric view of ``image`` (uint8 [h, w, 3]): random channel order, per-channel
    gain and offset, sometimes grey. Colour changes, texture does not."""
    pixels = image.astype(np.float32)[:, :, rng.permutation(3)]
    pixels = pixels * rng.uniform(0.6, 1.4, 3) + rng.uniform(-50, 50, 3)
    if rng.random() < 0.2:
        pixels = np.repeat(pixels.mean(2, keepdims=True), 3, axis=2)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def folder_statistics(items: list[CachedImage]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (float32 [C]) of the head input over ``items``."""
    total, squares, count = None, None, 0
    for item in items:
        flat = head_input(item).reshape(-1, item.features.size[0] * item.features.size[1])
        total = flat.sum(1) if total is None else total + flat.sum(1)
        squares = (flat**2).sum(1) if squares is None else squares + (flat**2).sum(1)
        count += flat.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 1e-8))
    return mean.astype(np.float32), std.astype(np.float32)


def _crop_box(size: tuple[int, int], crop: int, rng: np.random.Generator) -> tuple[slice, slice]:
    top = int(rng.integers(0, max(1, size[0] - crop + 1)))
    left = int(rng.integers(0, max(1, size[1] - crop + 1)))
    return slice(top, top + crop), slice(left, left + crop)


def _view(item: CachedImage, box: tuple[slice, slice], rng: np.random.Generator) -> np.ndarray:
    """float32 [C, c, c] head input of a colour-jittered crop."""
    image = jitter_colours(np.ascontiguousarray(item.features.image[box]), rng)
    planes = compute_filter_features(image, GROUPING_FILTERS)
    if item.features.clip is None:
        return planes
    clip = upsample_clip(item.features.clip, item.features.size)[(slice(None), *box)]
    return np.concatenate([planes, clip])


def _batch(items: list[CachedImage], config: GroupConfig, rng: np.random.Generator) -> tuple:
    """(query input, key input (flipped), masks int64 [B, c, c] unique ids, foreground)."""
    queries, keys, masks, fore, next_id = [], [], [], [], 0
    crop = min([config.crop] + [min(item.features.size) for item in items])
    for item in items:
        box = _crop_box(item.features.size, crop, rng)
        local = item.proposals.masks[box].astype(np.int64)
        ids = np.full(256, -1, np.int64)
        present, counts = np.unique(local[local != 255], return_counts=True)
        for value in present[counts >= _MIN_MASK_PIXELS]:
            ids[value], next_id = next_id, next_id + 1
        masks.append(ids[local])
        queries.append(_view(item, box, rng))
        keys.append(_view(item, box, rng)[:, :, ::-1])
        fore.append(item.proposals.foreground[box].astype(np.float32))
    as_tensor = lambda arrays: torch.from_numpy(np.ascontiguousarray(np.stack(arrays)))  # noqa: E731
    return as_tensor(queries), as_tensor(keys), as_tensor(masks), as_tensor(fore)[:, None]


def _momentum_update(key_head: EmbeddingHead, head: EmbeddingHead, momentum: float) -> None:
    with torch.no_grad():
        for key_param, param in zip(key_head.parameters(), head.parameters(), strict=True):
            key_param.mul_(momentum).add_(param.detach(), alpha=1 - momentum)


def _autograd() -> contextlib.ExitStack:
    """Autograd on even under the caller's ``torch.inference_mode()`` (the GUI's engine thread
    runs jobs in it). Entered per step, never across a ``yield``: grad mode is thread-local."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode(False))
    stack.enter_context(torch.enable_grad())
    return stack


class _Trainer:
    """One MaskContrast step at a time over ``load(i)`` -> CachedImage of image i."""

    def __init__(self, head: EmbeddingHead, config: GroupConfig) -> None:
        self.head, self.config = head, config
        self.key_head = copy.deepcopy(head).requires_grad_(False)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.bank = PrototypeBank(config.bank, config.dim, self.generator)
        self.optimiser = torch.optim.Adam(head.parameters(), lr=config.lr)

    def step(self, items: list[CachedImage], rng: np.random.Generator) -> float:
        with _autograd():
            query_in, key_in, masks, foreground = _batch(items, self.config, rng)
            queries, mask_logits = self.head(query_in)
            with torch.no_grad():
                keys = self.key_head(key_in)[0].flip(-1)
                prototypes, _ = mask_prototypes(keys, masks)
            loss = contrastive_loss(
                queries, masks, prototypes, self.bank.items, self.config.temperature,
                _MAX_QUERY_PIXELS, self.generator,
            ) + self.config.mask_weight * balanced_bce(mask_logits, foreground)  # fmt: skip
            self.optimiser.zero_grad()
            loss.backward()
            self.optimiser.step()
            _momentum_update(self.key_head, self.head, self.config.momentum)
            self.bank.push(prototypes)
        return float(loss.detach())


def fit_head(
    load: Callable[[int], CachedImage],
    count: int,
    config: GroupConfig,
    should_stop: Callable[[], bool],
) -> Generator[tuple[int, float], None, EmbeddingHead]:
    """Train a head on images ``0..count-1``; yields (step, loss), returns the head."""
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    sample = [load(int(i)) for i in rng.choice(count, size=min(count, 32), replace=False)]
    mean, std = folder_statistics(sample)
    with _autograd():  # parameters made under inference mode could never train
        head = EmbeddingHead(len(mean), config.dim)
        head.mean.copy_(torch.from_numpy(mean))
        head.std.copy_(torch.from_numpy(std))
        trainer = _Trainer(head, config)
    for step in range(1, config.steps + 1):
        if should_stop():
            break
        chosen = rng.choice(count, size=min(count, config.batch), replace=False)
        yield step, trainer.step([load(int(i)) for i in chosen], rng)
    return head.eval()


def embed(head: EmbeddingHead | None, stats: Any, item: CachedImage) -> np.ndarray:
    """float32 [E, h, w] per-pixel embedding: the head's, or (``head`` None) the standardised
    raw input with ``stats`` = (mean [C], std [C])."""
    inputs = head_input(item)
    if head is None:
        mean, std = stats
        return (inputs - mean[:, None, None]) / std[:, None, None]
    with torch.no_grad():
        return head(torch.from_numpy(np.ascontiguousarray(inputs))[None])[0][0].numpy()
