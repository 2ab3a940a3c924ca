"""Weight-free multi-scale pixel features, as ilastik computes them for its pixel classifier.

Every feature is computed at the full resolution of the image it is given, so the head sees
edges and textures far finer than the CLIP patch grid. No weights are involved: retraining works
(and helps) with no CLIP model at all.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np

#: Features per scale: 3 smoothed Lab channels, gradient magnitude, Laplacian of Gaussian,
#: 2 structure-tensor eigenvalues, 2 Hessian eigenvalues.
_FEATURES_PER_SIGMA = 9
_COLOUR_FEATURES = 3


@dataclass(frozen=True)
class FilterSpec:
    """Which filters to compute: Gaussian scales in pixels of the image they are applied to."""

    sigmas: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)

    @property
    def num_features(self) -> int:
        return _COLOUR_FEATURES + _FEATURES_PER_SIGMA * len(self.sigmas)


def _blur(values: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(
        values, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT
    )


def _lab(image: np.ndarray) -> np.ndarray:
    """``image`` uint8 [H, W, 3] RGB -> float32 [H, W, 3] Lab scaled to roughly [0, 1]."""
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return lab * np.float32(1 / 100.0)


def _eigenvalues(xx: np.ndarray, xy: np.ndarray, yy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (larger, smaller) of the symmetric 2x2 field [[xx, xy], [xy, yy]]."""
    half_trace = 0.5 * (xx + yy)
    root = np.sqrt(0.25 * (xx - yy) ** 2 + xy**2)
    return half_trace + root, half_trace - root


def _scale_features(lab: np.ndarray, gray: np.ndarray, sigma: float) -> list[np.ndarray]:
    """The nine [H, W] float32 features of one scale ``sigma``."""
    smooth_lab = _blur(lab, sigma)
    smooth = _blur(gray, sigma)
    dx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    dy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    dxx = cv2.Sobel(smooth, cv2.CV_32F, 2, 0, ksize=3, scale=0.25)
    dyy = cv2.Sobel(smooth, cv2.CV_32F, 0, 2, ksize=3, scale=0.25)
    dxy = cv2.Sobel(smooth, cv2.CV_32F, 1, 1, ksize=3, scale=0.25)
    # Scale-normalised derivatives (times sigma^order) keep every scale in the same range.
    grad = np.sqrt(dx**2 + dy**2) * sigma
    log = (dxx + dyy) * sigma**2
    outer = 0.5 * sigma  # vigra/ilastik: structure tensor with outer scale sigma / 2
    st_big, st_small = _eigenvalues(
        _blur(dx * dx, outer) * sigma**2,
        _blur(dx * dy, outer) * sigma**2,
        _blur(dy * dy, outer) * sigma**2,
    )
    he_big, he_small = _eigenvalues(dxx * sigma**2, dxy * sigma**2, dyy * sigma**2)
    channels = [smooth_lab[:, :, 0], smooth_lab[:, :, 1], smooth_lab[:, :, 2]]
    return channels + [
        grad,
        log,
        np.sqrt(st_big),
        np.sqrt(np.maximum(st_small, 0)),
        he_big,
        he_small,
    ]


def compute_filter_features(image: np.ndarray, spec: FilterSpec = FilterSpec()) -> np.ndarray:
    """Multi-scale filter features of ``image``.

    ``image`` is uint8 [H, W, 3] RGB. Returns float32 [F, H, W] with ``F = spec.num_features``:
    the Lab colour, then per sigma the smoothed Lab colour, gradient magnitude, Laplacian of
    Gaussian, structure-tensor eigenvalues and Hessian eigenvalues (scale-normalised).
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    lab = _lab(np.ascontiguousarray(image))
    gray = np.ascontiguousarray(lab[:, :, 0])
    planes = [lab[:, :, 0], lab[:, :, 1], lab[:, :, 2]]
    for sigma in spec.sigmas:
        planes.extend(_scale_features(lab, gray, sigma))
    return np.stack(planes).astype(np.float32, copy=False)


class FilterCache:
    """A small LRU cache of filter features keyed by image content, bounded in bytes."""

    def __init__(self, spec: FilterSpec, max_bytes: int = 512 * 2**20) -> None:
        self.spec = spec
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[bytes, tuple[int, ...]], np.ndarray] = OrderedDict()
        self.compute_count = 0

    def get(self, image: np.ndarray) -> np.ndarray:
        """Filter features float32 [F, H, W] of ``image`` (uint8 [H, W, 3]), cached by content."""
        key = (_digest(image), image.shape)
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            return found
        features = compute_filter_features(image, self.spec)
        self.compute_count += 1
        self._entries[key] = features
        self._evict()
        return features

    def _evict(self) -> None:
        while (
            len(self._entries) > 1
            and sum(v.nbytes for v in self._entries.values()) > self.max_bytes
        ):
            self._entries.popitem(last=False)


def _digest(image: np.ndarray) -> bytes:
    import hashlib

    return hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).digest()
