"""Edge-aware refinement of logits: PAMR (pixel-adaptive mask refinement) as NACLIP publishes it.

PAMR (Araslanov & Roth, 2020) as the NACLIP figures were measured: at the image's original size,
on the (unscaled) logits, 10 steps, dilations (8, 16). For every pixel, the 8 neighbours at each
dilation (16 in all, edges replicated) get an affinity ``-|I_n - I_p| / (0.1 * sigma_p)`` per
colour channel, where ``sigma_p`` is the unbiased standard deviation of that channel over the 3 x 3
dilated windows of both dilations, centre pixels included (18 samples); affinities are averaged
over channels and softmax-normalised over the 16 neighbours. Each step replaces every pixel's
logits by the affinity-weighted sum of its neighbours' logits (the centre itself is not one).
The linear steps commute with the logit scale, so scaled logits refine the same way.

Memory stays at a few copies of the logits: neighbours are accumulated one at a time, never
stacked. Adding a refiner = one function + one line in :data:`REFINERS`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from annotator.engine.config import EngineConfigError

PAMR_DILATIONS = (8, 16)
PAMR_STEPS = 10
#: The 8 neighbour offsets (dy, dx) in units of the dilation, row-major.
_OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)
#: Above this many pixels PAMR runs at a size of this many pixels (then upsampled): the protocol
#: is exact for every image up to 1 Mpx (VOC and COCO images are under 0.41 Mpx).
PAMR_MAX_PIXELS = 1_000_000


def _shifted(padded: Tensor, d: int, dy: int, dx: int, size: tuple[int, int]) -> Tensor:
    """The view of ``padded`` (padded by ``d`` on each side) shifted by ``(dy, dx) * d``."""
    top, left = d + dy * d, d + dx * d
    return padded[..., top : top + size[0], left : left + size[1]]


def _window_samples(image: Tensor, dilations: tuple[int, ...]) -> list[Tensor]:
    """The 9 samples of the dilated 3 x 3 window per dilation, centre included: ``[K, H, W]``."""
    size = (image.shape[-2], image.shape[-1])
    samples = []
    for d in dilations:
        padded = F.pad(image.unsqueeze(0), (d, d, d, d), mode="replicate")[0]
        samples += [_shifted(padded, d, dy, dx, size) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return samples


def _local_std(image: Tensor, dilations: tuple[int, ...]) -> Tensor:
    """Unbiased per-channel std ``[K, H, W]`` over the windows of every dilation (two passes)."""
    samples = _window_samples(image, dilations)
    mean = sum(samples) / len(samples)
    squares = sum((sample - mean).square() for sample in samples)
    return (squares / (len(samples) - 1)).sqrt()


def pamr_affinity(image: Tensor, dilations: tuple[int, ...] = PAMR_DILATIONS) -> Tensor:
    """Neighbour weights ``[len(dilations) * 8, H, W]`` float32 (softmax over neighbours) for
    ``image`` ``[K, H, W]`` (any per-channel affine colour scale gives the same weights).

    Computed in float64 (once per image): where the local spread is small the scores reach
    hundreds, and float32 would put ~1e-5 relative error into every refined logit.
    """
    image = image.float() if image.device.type == "mps" else image.double()
    size = (image.shape[-2], image.shape[-1])
    scale = 1e-8 + 0.1 * _local_std(image, dilations)
    scores = []
    for d in dilations:
        padded = F.pad(image.unsqueeze(0), (d, d, d, d), mode="replicate")[0]
        for dy, dx in _OFFSETS:
            difference = (_shifted(padded, d, dy, dx, size) - image).abs()
            scores.append((-difference / scale).mean(dim=0))
    return torch.softmax(torch.stack(scores), dim=0).float()


def propagate(values: Tensor, affinity: Tensor, steps: int, dilations: tuple[int, ...]) -> Tensor:
    """``steps`` PAMR steps on ``values`` ``[C, H, W]`` with weights from :func:`pamr_affinity`."""
    size = (values.shape[-2], values.shape[-1])
    for _ in range(steps):
        refined = torch.zeros_like(values)
        index = 0
        for d in dilations:
            padded = F.pad(values.unsqueeze(0), (d, d, d, d), mode="replicate")[0]
            for dy, dx in _OFFSETS:
                refined.addcmul_(_shifted(padded, d, dy, dx, size), affinity[index])
                index += 1
        values = refined
    return values


def pamr(image: Tensor, logits: Tensor, steps: int = PAMR_STEPS) -> Tensor:
    """Refine ``logits`` ``[C, H, W]`` along the colours of ``image`` ``[3, H, W]`` float (same
    size); returns float32 ``[C, H, W]``."""
    affinity = pamr_affinity(image, PAMR_DILATIONS)
    return propagate(logits.float(), affinity, steps, PAMR_DILATIONS)


Refiner = Callable[[Tensor, Tensor], Tensor]

REFINERS: dict[str, Refiner] = {"pamr": pamr}


def get_refiner(name: str) -> Refiner:
    refiner = REFINERS.get(name.strip().lower())
    if refiner is None:
        raise EngineConfigError(
            f"Unknown refinement {name!r}; choose one of: {', '.join(REFINERS)}"
        )
    return refiner
