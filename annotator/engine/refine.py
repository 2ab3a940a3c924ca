"""Edge-aware refinement of logits: PAMR (pixel-adaptive mask refinement) as NACLIP publishes it.

PAMR (Araslanov & Roth, 2020) as the NACLIP figures were measured: at the image's original size,
on the (unscaled) logits, 10 steps, dilations (8, 16). For every pixel, the 8 neighbours at each
dilation (16 in all, edges replicated) get an affinity ``-|I_n - I_p| / (0.1 * sigma_p)`` per
colour channel, where ``sigma_p`` is the unbiased standard deviation of that channel over the 3 x 3
dilated windows of both dilations, centre pixels included (18 samples); affinities are averaged
over channels and softmax-normalised over the 16 neighbours. Each step replaces every pixel's
logits by the affinity-weighted sum of its neighbours' logits (the centre itself is not one).
The linear steps commute with the logit scale, so scaled logits refine the same way.

Speed: the affinity depends on the image only, so :func:`pamr_kernel` computes it once per image
(the segmenter keeps it with the image's features) and a query only runs the cheap steps. Both
work on one flat, replicate-padded buffer (:class:`_Grid`): every neighbour is then a constant
offset into it, so there is no padding copy per step, each operation reads contiguous memory,
and on the CPU the work goes in bands of rows small enough to stay in the core's cache. The sums
are taken in the same order as the plain version, so the results are the same to the last bit.
On the CPU, when the package was built with a C compiler, both halves run as compiled loops
instead (:mod:`annotator.engine._pamr_parts`, about twice as fast: the same weights, steps
equal to float32 rounding). Adding a refiner = one function + one line in :data:`REFINERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from annotator.engine import _pamr_parts
from annotator.engine.config import EngineConfigError

PAMR_DILATIONS = (8, 16)
PAMR_STEPS = 10
#: The 8 neighbour offsets (dy, dx) in units of the dilation, row-major.
_OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)
#: The dilated 3 x 3 window, centre included (the standard deviation's samples).
_WINDOW = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
#: Above this many pixels PAMR runs at a size of this many pixels (then upsampled): the protocol
#: is exact for every image up to 1 Mpx (VOC and COCO images are under 0.41 Mpx).
PAMR_MAX_PIXELS = 1_000_000
#: Bytes of one band's values (per tensor) on the CPU: a band's inputs and outputs stay in L2.
_BAND_BYTES = 384 << 10


@dataclass(frozen=True)
class _Grid:
    """A ``[C, H, W]`` tensor stored flat as ``[C, size]``: padded by ``pad`` on every side
    (rows of ``row = W + 2 * pad``), plus ``pad`` spare elements before and after, so that the
    pixel ``(y, x)`` shifted by ``(dy, dx)`` (``|dy|, |dx| <= pad``) is at flat index
    ``start + y * row + x + dy * row + dx`` for every row ``y`` and every column of a padded row.
    """

    height: int
    width: int
    pad: int

    @property
    def row(self) -> int:
        return self.width + 2 * self.pad

    @property
    def start(self) -> int:
        return self.pad + self.pad * self.row

    @property
    def size(self) -> int:
        return (self.height + 2 * self.pad) * self.row + 2 * self.pad

    @property
    def strip(self) -> int:
        """Length of the flat strip of the ``H`` image rows (padding columns included)."""
        return self.height * self.row

    def offsets(self, dilations: tuple[int, ...], shifts: tuple[tuple[int, int], ...]) -> list[int]:
        return [dy * d * self.row + dx * d for d in dilations for dy, dx in shifts]

    def padded(self, values: Tensor) -> Tensor:
        """``values`` ``[C, H, W]`` -> flat ``[C, size]`` with the edges replicated outwards."""
        flat = values.new_zeros(values.shape[0], self.size)
        self.rows(flat)[:, self.pad : self.pad + self.height, self.pad : -self.pad] = values
        self.replicate_edges(flat)
        return flat

    def rows(self, flat: Tensor) -> Tensor:
        """The padded image ``[C, H + 2 pad, W + 2 pad]`` as a view of ``flat``."""
        length = (self.height + 2 * self.pad) * self.row
        return flat[:, self.pad : self.pad + length].view(flat.shape[0], -1, self.row)

    def interior(self, flat: Tensor) -> Tensor:
        """The ``[C, H, W]`` image as a (strided) view of ``flat``."""
        p = self.pad
        return self.rows(flat)[:, p : p + self.height, p : p + self.width]

    def replicate_edges(self, flat: Tensor) -> None:
        """Overwrite the padding of ``flat`` with copies of the nearest image pixel (in place)."""
        grid, p, h, w = self.rows(flat), self.pad, self.height, self.width
        grid[:, p : p + h, :p] = grid[:, p : p + h, p : p + 1]
        grid[:, p : p + h, p + w :] = grid[:, p : p + h, p + w - 1 : p + w]
        grid[:, :p] = grid[:, p : p + 1]
        grid[:, p + h :] = grid[:, p + h - 1 : p + h]

    def bands(self, rows: int) -> Iterator[tuple[int, int]]:
        """Strip ranges ``(a, b)`` (relative to ``start``) of ``rows`` image rows each."""
        for top in range(0, self.height, rows):
            yield top * self.row, min(top + rows, self.height) * self.row


def _band_rows(grid: _Grid, channels: int, element: int, device: torch.device) -> int:
    """Rows per band: all of them off the CPU; on it, a band of ``channels`` values of ``element``
    bytes fits in :data:`_BAND_BYTES` (at least 8 rows, fewer operations)."""
    if device.type != "cpu":
        return grid.height
    return max(8, _BAND_BYTES // max(1, channels * grid.row * element))


#: Whether PAMR may run through the compiled loops (a switch for tests and benchmarks).
USE_NATIVE = True


def _native(values: Tensor) -> bool:
    return USE_NATIVE and _pamr_parts.available() and values.device.type == "cpu"


@dataclass(frozen=True)
class PamrKernel:
    """The image-dependent half of PAMR: ``weights`` ``[len(dilations) * 8, H * row]`` float32,
    each neighbour's softmax weight at every pixel of the flat strip (padding columns hold values
    that are never read back)."""

    grid: _Grid
    weights: Tensor
    dilations: tuple[int, ...]

    def propagate(self, values: Tensor, steps: int = PAMR_STEPS) -> Tensor:
        """``steps`` PAMR steps on ``values`` ``[C, H, W]`` -> float32 ``[C, H, W]``."""
        grid = self.grid
        buffers = [grid.padded(values.float())]
        buffers.append(torch.empty_like(buffers[0]))
        if _native(values):
            offsets = grid.offsets(self.dilations, _OFFSETS)
            result = _pamr_parts.steps(buffers, self.weights, grid, offsets, steps)
            return grid.interior(result).contiguous()
        rows = _band_rows(grid, values.shape[0], 4, values.device)
        # The views of a step are the same every other step: slice them once.
        plans = [self._plan(buffers[0], buffers[1], rows), self._plan(buffers[1], buffers[0], rows)]
        for step in range(steps):
            for out, terms in plans[step % 2]:
                torch.mul(*terms[0], out=out)
                for shifted, weights in terms[1:]:
                    out.addcmul_(shifted, weights)
            grid.replicate_edges(buffers[(step + 1) % 2])
        return grid.interior(buffers[steps % 2]).contiguous()

    def _plan(self, source: Tensor, target: Tensor, rows: int) -> list[tuple[Tensor, list]]:
        """Per band of ``rows`` rows: the output view and its (neighbour view, weights) terms."""
        grid, start = self.grid, self.grid.start
        offsets = grid.offsets(self.dilations, _OFFSETS)
        plan = []
        for a, b in grid.bands(rows):
            weights = self.weights[:, a:b].unbind(0)
            terms = [
                (source[:, start + a + offset : start + b + offset], weights[index])
                for index, offset in enumerate(offsets)
            ]
            plan.append((target[:, start + a : start + b], terms))
        return plan


def pamr_kernel(image: Tensor, dilations: tuple[int, ...] = PAMR_DILATIONS) -> PamrKernel:
    """The neighbour weights of ``image`` ``[K, H, W]`` (any per-channel affine colour scale gives
    the same weights), computed in float64 (float32 on mps, which has no float64).

    float64 because the colour differences of an upsampled image are divided by the local spread:
    where both are tiny, float32 rounding of the image would decide the weights (~2e-4 error in
    refined logits). The weights are stored as float32.
    """
    exact = torch.float32 if image.device.type == "mps" else torch.float64
    grid = _Grid(image.shape[-2], image.shape[-1], max(dilations))
    flat = grid.padded(image.to(exact))
    window, neighbours = grid.offsets(dilations, _WINDOW), grid.offsets(dilations, _OFFSETS)
    if _native(flat) and flat.dtype == torch.float64 and len(flat) <= _pamr_parts.MAX_CHANNELS:
        weights = _pamr_parts.weight_rows(8 * len(dilations), grid.strip)  # padding columns: 0
        _pamr_parts.weights(flat, weights, grid, window, neighbours)
        return PamrKernel(grid, weights, tuple(dilations))
    weights = torch.empty(8 * len(dilations), grid.strip, device=image.device)
    rows = _band_rows(grid, image.shape[0], flat.element_size(), image.device)
    work = _Workspace(flat, min(rows, grid.height) * grid.row, 8 * len(dilations))
    for a, b in grid.bands(rows):
        work.weights(weights[:, a:b], grid.start + a, window, neighbours)
    return PamrKernel(grid, weights, tuple(dilations))


class _Workspace:
    """Scratch tensors for the weights of one band of ``flat`` ``[K, size]`` (reused per band)."""

    def __init__(self, flat: Tensor, length: int, neighbours: int) -> None:
        self.flat = flat
        channels = flat.shape[0]
        self.mean, self.squares, self.deviation = flat.new_empty(3, channels, length).unbind(0)
        self.scores = flat.new_empty(neighbours, length)

    def weights(self, out: Tensor, first: int, window: list[int], neighbours: list[int]) -> None:
        """Softmax weights ``out`` ``[N, length]`` of the flat range ``[first, first + length)``.

        No maximum is subtracted before ``exp``: every score is in ``[-51, 0]`` (a channel's
        ``|I_n - I_p|`` is at most ``sqrt(17 * 3 / 2) * sigma_p``, as ``I_n`` and the centre,
        counted twice, are among sigma's 18 samples), far from float64's (or float32's) limits.
        """
        length = out.shape[1]
        flat, scores = self.flat, self.scores[:, :length]
        centre = flat[:, first : first + length]
        scale = self._inverse_scale(first, length, window)
        difference = self.deviation[:, :length]
        for index, offset in enumerate(neighbours):
            torch.sub(flat[:, first + offset : first + offset + length], centre, out=difference)
            difference.abs_()
            row = scores[index]
            torch.mul(difference[0], scale[0], out=row)
            for channel in range(1, flat.shape[0]):
                row.addcmul_(difference[channel], scale[channel])
        scores.exp_()
        torch.div(scores, scores.sum(dim=0), out=out)

    def _inverse_scale(self, first: int, length: int, window: list[int]) -> Tensor:
        """``-1 / (K * (1e-8 + 0.1 * sigma))`` per channel ``[K, length]``: sigma the unbiased
        std of the window samples (two passes), K channels (the mean over channels folded in)."""
        flat = self.flat
        samples = [flat[:, first + offset : first + offset + length] for offset in window]
        mean = self.mean[:, :length]
        torch.add(samples[0], samples[1], out=mean)
        for sample in samples[2:]:
            mean.add_(sample)
        mean.div_(len(samples))
        squares, deviation = self.squares[:, :length], self.deviation[:, :length]
        torch.sub(samples[0], mean, out=squares)
        squares.square_()
        for sample in samples[1:]:
            torch.sub(sample, mean, out=deviation)
            squares.addcmul_(deviation, deviation)
        sigma = squares.div_(len(samples) - 1).sqrt_()
        return sigma.mul_(0.1).add_(1e-8).mul_(flat.shape[0]).reciprocal_().neg_()


def pamr_affinity(image: Tensor, dilations: tuple[int, ...] = PAMR_DILATIONS) -> Tensor:
    """Neighbour weights ``[len(dilations) * 8, H, W]`` float32 (softmax over neighbours)."""
    kernel = pamr_kernel(image, dilations)
    grid = kernel.grid
    weights = kernel.weights.view(-1, grid.height, grid.row)
    return weights[:, :, grid.pad : grid.pad + grid.width].contiguous()


def pamr(image: Tensor, logits: Tensor, steps: int = PAMR_STEPS) -> Tensor:
    """Refine ``logits`` ``[C, H, W]`` along the colours of ``image`` ``[3, H, W]`` float (same
    size); returns float32 ``[C, H, W]``."""
    return pamr_kernel(image, PAMR_DILATIONS).propagate(logits, steps)


Refiner = Callable[[Tensor, Tensor], Tensor]

REFINERS: dict[str, Refiner] = {"pamr": pamr}


def get_refiner(name: str) -> Refiner:
    refiner = REFINERS.get(name.strip().lower())
    if refiner is None:
        raise EngineConfigError(
            f"Unknown refinement {name!r}; choose one of: {', '.join(REFINERS)}"
        )
    return refiner
