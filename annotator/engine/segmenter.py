"""The segmenter: encode an image once, answer many class-name queries against its features."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from annotator.engine._cache import ByteLRU
from annotator.engine.backbone import Backbone
from annotator.engine.config import EngineConfig, EngineConfigError
from annotator.engine.devices import autocast, empty_cache, is_out_of_memory, small_work_threads
from annotator.engine.features import (
    Layout,
    Tiling,
    Windows,
    choose_tiling,
    encode_dense_windows,
    plan_layout,
    resize_image,
    to_pixels,
)
from annotator.engine.output import full_resolution_labels
from annotator.engine.proposal import LogitAdapter, Proposal, WorkingView
from annotator.engine.proposers import get_proposer
from annotator.engine.proposers.base import ProposerInput
from annotator.engine.protocol import (
    Groups,
    class_logits,
    class_probabilities,
    grid_logits,
    group_queries,
    refine_size,
    refined_logits,
    upsample,
    window_logits,
)
from annotator.engine.refine import PAMR_MAX_PIXELS, PamrKernel, get_refiner, pamr_kernel
from annotator.engine.refine_cache import RefinedRows
from annotator.engine.text import TextEmbeddings, split_synonyms
from annotator.engine.text_store import TextStore
from annotator.errors import AnnotatorError, WeightsUnavailableError

#: Outputs up to this many values (pixels x classes) are computed on one CPU thread, or two while
#: another core is idle (:func:`~annotator.engine.devices.small_work_threads`).
_SMALL_OUTPUT = 8_000_000


class EngineWarning(UserWarning):
    """Something was worked around (out of memory -> smaller tiles or CPU); results are valid."""


class EngineOutOfMemoryError(AnnotatorError):
    """Not even the smallest tiles on the CPU fit in memory."""


@dataclass
class _ImageState:
    """One encoded image: ``features`` ``[D, gh, gw]`` averaged on the patch grid, ``windows``
    each sliding window's own features (``None`` for whole-image encoding), PAMR's neighbour
    weights per refinement size (they depend on the image only), and ``serial``, unique to this
    encoding (the key of its refined rows)."""

    layout: Layout
    image: np.ndarray
    features: Tensor | None
    windows: Windows | None = None
    affinity: dict[tuple[int, int], PamrKernel] = field(default_factory=dict)
    serial: int = field(default_factory=lambda: next(_SERIALS))


_SERIALS = itertools.count()


def _state_bytes(state: _ImageState) -> int:
    size = state.image.nbytes
    size += state.features.numel() * 4 if state.features is not None else 0
    size += sum(feat.numel() * 4 for _, _, feat in state.windows or ())
    height, width = refine_size(state.layout.original, PAMR_MAX_PIXELS)
    return size + 16 * height * (width + 32) * 4  # room for PAMR's weights (padded rows)


def content_hash(image: np.ndarray) -> str:
    """A digest of the pixels and shape of ``image``: the cache identity of an image."""
    digest = hashlib.blake2b(str(image.shape).encode(), digest_size=16)
    digest.update(memoryview(np.ascontiguousarray(image)).cast("B"))
    return digest.hexdigest()


def as_rgb8(image: np.ndarray) -> np.ndarray:
    """Accept ``[H, W, 3]`` uint8 (also grayscale ``[H, W]``, RGBA, and 16-bit) -> ``[H, W, 3]``."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or min(image.shape[:2]) < 1:
        raise ValueError(f"Expected an image array HxWx3, got shape {image.shape}")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"Expected uint8 pixels, got {image.dtype}; use annotator.imageio")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


class Segmenter:
    """Zero-shot dense proposals in the style of SAM's predictor: numpy in, numpy out.

    ``set_image`` encodes an image once (features kept in a memory-bounded LRU keyed by content);
    ``predict`` then costs text encoding (cached per name), a matmul and upsampling.
    """

    def __init__(
        self,
        config: EngineConfig,
        backbone: Backbone | None,
        device: torch.device,
        dtype: torch.dtype,
        weights_error: WeightsUnavailableError | None = None,
        text_store: TextStore | None = None,
    ) -> None:
        self.config = config
        self.backbone = backbone
        self.device = device
        self.dtype = dtype
        self.weights_error = weights_error
        self.encode_count = 0
        self._text = (
            TextEmbeddings(backbone.text_encoder, config.templates, text_store)
            if backbone
            else None
        )
        self._refiner = get_refiner(config.refine) if config.refine else None
        self.proposer = get_proposer(config.proposer)
        self._cache: ByteLRU[_ImageState] = ByteLRU(config.feature_cache_mb << 20, _state_bytes)
        self._state: _ImageState | None = None
        self._refined = RefinedRows()

    @property
    def available(self) -> bool:
        """False when the CLIP weights are missing (see ``weights_error``)."""
        return self.backbone is not None

    @property
    def patch_size(self) -> int:
        return self.backbone.patch_size if self.backbone is not None else 16

    def set_image(self, image: np.ndarray) -> None:
        """Make ``image`` (``[H, W, 3]`` uint8 RGB, display orientation) the current image."""
        self._state = self._prepare(image)

    def image_features(self, image: np.ndarray) -> np.ndarray:
        """float32 ``[D, gh, gw]`` L2-normalised dense features of ``image`` (cached)."""
        self._require_weights()
        return self._prepare(image).features.cpu().numpy()

    def encode_text(self, classes: Sequence[str]) -> np.ndarray:
        """float32 ``[C, D]`` L2-normalised embeddings; ``"a; b"`` averages synonyms."""
        self._require_weights()
        return self._text(list(classes)).numpy()

    def clear_cache(self) -> None:
        """Forget every encoded image (the current one stays usable for ``predict``)."""
        self._cache.clear()
        self._refined.clear()

    def _require_weights(self) -> None:
        if self.backbone is None:
            raise self.weights_error or WeightsUnavailableError("No CLIP weights are loaded.")

    def _settings_key(self) -> tuple:
        c = self.config
        key = self.backbone.key if self.backbone else "no-weights"
        sizes = (c.short_side, c.max_long_side, c.window, c.stride, c.max_tokens)
        return (key, c.head, *sizes, c.resize_filter)

    def _prepare(self, image: np.ndarray) -> _ImageState:
        image = as_rgb8(image)
        key = (content_hash(image), self._settings_key())
        state = self._cache.get(key)
        if state is None:
            state = self._encode_image(image)
            self._cache.put(key, state)
        return state

    def _encode_image(self, image: np.ndarray) -> _ImageState:
        c = self.config
        layout = plan_layout(image.shape[:2], c.short_side, c.max_long_side, self.patch_size)
        working = resize_image(image, layout.working, c.resize_filter)
        features = windows = None
        if self.backbone is not None:
            features, windows = self._encode_with_fallback(working, layout)
            self.encode_count += 1
        return _ImageState(layout, working, features, windows)

    def _tilings(self, layout: Layout) -> Iterator[Tiling]:
        c = self.config
        tiling = choose_tiling(layout, c.window, c.stride, c.max_tokens, c.batch_size)
        yield tiling
        window = tiling.window or min(layout.padded)
        while window // 2 >= 4 * layout.patch:
            window //= 2
            yield choose_tiling(layout, window, window // 2, c.max_tokens, 1)

    def _encode_with_fallback(
        self, working: np.ndarray, layout: Layout
    ) -> tuple[Tensor, Windows | None]:
        while True:
            for tiling in self._tilings(layout):
                try:
                    return self._run_encoder(working, layout, tiling)
                except Exception as error:
                    if not is_out_of_memory(error):
                        raise
                    empty_cache(self.device)
                    warnings.warn(
                        f"Out of memory on {self.device} encoding with tiles of "
                        f"{tiling.window or 'the whole image'}; retrying smaller",
                        EngineWarning,
                        stacklevel=2,
                    )
            if self.device.type == "cpu":
                raise EngineOutOfMemoryError(
                    "Not enough memory to encode the image even in small tiles on the CPU; "
                    "lower the working resolution (--short-side) or close other programs."
                )
            self._move_to_cpu()

    def _move_to_cpu(self) -> None:
        warnings.warn(
            f"Out of memory on {self.device}; the engine continues on the CPU (slower).",
            EngineWarning,
            stacklevel=3,
        )
        self.device, self.dtype = torch.device("cpu"), torch.float32
        self.backbone.to(self.device)

    def _run_encoder(
        self, working: np.ndarray, layout: Layout, tiling: Tiling
    ) -> tuple[Tensor, Windows | None]:
        backbone = self.backbone
        pixels = to_pixels(working, layout.padded, backbone.mean, backbone.std, self.device)
        with torch.inference_mode(), autocast(self.device, self.dtype):
            return encode_dense_windows(backbone.image_encoder, pixels, tiling, layout.patch)

    def predict(
        self, classes: Sequence[str], adapter: LogitAdapter | Callable | None = None
    ) -> Proposal:
        """Label the current image with ``classes`` (each may hold ``;``-separated synonyms)."""
        state = self._current()
        names = _check_classes(classes)
        if self.backbone is None and adapter is None:
            self._require_weights()
        with torch.inference_mode(), self._threads_for(state, len(names)):
            scaled, groups = self._scaled_logits(state, names)
            if adapter is not None:
                scaled, groups = self._adapt(adapter, state, names, scaled, groups), None
            inputs = ProposerInput(
                state.image, state.features, state.layout, names,
                self._proposer_text(state, names), scaled, adapter, state, groups,
            )  # fmt: skip
            return self.proposer.propose(self, inputs)

    def _proposer_text(self, state: _ImageState, names: list[str]) -> Tensor | None:
        """Class text embeddings ``[C, D]`` for proposers that name segments; the dense proposer
        reads only logits, so it skips them (a new name's 80 templates cost once, not twice)."""
        if self.proposer.name == "dense" or self._text is None or state.features is None:
            return None
        return self._text(names)

    def query_logits(self, classes: Sequence[str]) -> np.ndarray:
        """float32 ``[Q, H, W]``: the scaled logits of every name of ``classes`` (synonyms are
        separate rows with the "max" rule) at the original size, refined when refinement is on:
        what softmax and argmax read. Memory ``Q * H * W * 4`` bytes: for inspection and tests."""
        state = self._current()
        self._require_weights()
        with torch.inference_mode():
            names = _check_classes(classes)
            scaled, _ = self._scaled_logits(state, names)
            size = state.layout.original
            if self.config.refine:
                return self._refine(state, scaled, size, self._row_names(names)).cpu().numpy()
            return upsample(scaled, size).float().cpu().numpy()

    def _threads_for(self, state: _ImageState, classes: int) -> AbstractContextManager:
        """Few CPU threads for small outputs: on a busy machine, hand-offs cost more than the work."""
        height, width = state.layout.original
        small = self.device.type == "cpu" and height * width * classes <= _SMALL_OUTPUT
        return small_work_threads() if small else contextlib.nullcontext()

    def _current(self) -> _ImageState:
        if self._state is None:
            raise RuntimeError("Call set_image(image) before predict(classes).")
        return self._state

    def _scaled_logits(self, state: _ImageState, names: list[str]) -> tuple[Tensor, Groups]:
        """Working-resolution logits ``[Q, h, w]`` times the logit scale, and the class groups."""
        height, width = state.layout.working
        if state.features is None or self._text is None:
            return torch.zeros(len(names), height, width, device=self.device), None
        if self.config.synonyms == "max":
            text, per_class = self._text.queries(names)
            groups = group_queries(per_class)
        else:
            text, groups = self._text(names), None
        if state.windows is not None:
            logits = window_logits(text, state.windows, state.layout)
        else:
            logits = grid_logits(text, state.features, state.layout)
        return logits.mul_(self.config.logit_scale), groups

    def _adapt(
        self,
        adapter: Callable,
        state: _ImageState,
        names: list[str],
        scaled: Tensor,
        groups: Groups,
    ) -> Tensor:
        logits = class_logits(scaled, groups)
        text = self._text(names) if self._text is not None and state.features is not None else None
        view = WorkingView(
            image=state.image,
            features=None if state.features is None else state.features.cpu().numpy(),
            zero_shot_logits=logits.float().cpu().numpy(),
            class_names=list(names),
            text_embeddings=None if text is None else text.numpy(),
            original_size=state.layout.original,
        )
        adapted = np.asarray(adapter(view), dtype=np.float32)
        if adapted.shape != tuple(logits.shape):
            raise ValueError(
                f"The logit adapter returned shape {adapted.shape}; expected {tuple(logits.shape)}"
            )
        return torch.from_numpy(adapted).to(logits.device)

    def _row_names(self, classes: list[str]) -> list[tuple]:
        """What each row of zero-shot logits is a function of on a given image: its query
        (one name, or a class's names averaged) and the logit scale."""
        c = self.config
        if c.synonyms == "max":
            rows = [(name,) for entry in classes for name in split_synonyms(entry)]
        else:
            rows = [tuple(split_synonyms(entry)) for entry in classes]
        return [(c.synonyms, c.logit_scale, row) for row in rows]

    def _refine(
        self,
        state: _ImageState,
        scaled: Tensor,
        size: tuple[int, int],
        rows: list[tuple] | None = None,
    ) -> Tensor:
        """``scaled`` ``[Q, h, w]`` upsampled to ``size`` and refined along the working image
        (upsampled the same way, as the references do); with ``rows`` (:meth:`_row_names`, for
        zero-shot logits), PAMR rows refined before on this image are reused."""
        if self.config.refine.strip().lower() != "pamr":
            return refined_logits(scaled, self._refine_image(state, scaled), size, self._refiner)
        kernel = state.affinity.get(size)
        if kernel is None:
            image = upsample(self._refine_image(state, scaled), size)
            kernel = state.affinity[size] = pamr_kernel(image)
        return self._refined.refine(state.serial, kernel, scaled, size, rows)

    @staticmethod
    def _refine_image(state: _ImageState, scaled: Tensor) -> Tensor:
        """The working image ``[3, h, w]`` in [0, 1], float64 (float32 on mps: no float64).

        float64: PAMR's affinity divides colour differences by small local spreads, where
        float32 rounding of the upsampled image shows in the refined logits (~2e-4)."""
        pixels = torch.from_numpy(np.require(state.image, requirements=["C", "W"]))
        exact = torch.float32 if scaled.device.type == "mps" else torch.float64
        return pixels.to(scaled.device).permute(2, 0, 1).to(exact) / 255.0

    def _finish(
        self,
        state: _ImageState,
        names: list[str],
        scaled: Tensor,
        groups: Groups,
        zero_shot: bool = False,
    ) -> Proposal:
        """The proposal from ``scaled`` ``[Q, h, w]`` logits (``zero_shot``: straight from
        the text of ``names``, not adapted, so refined rows may be reused)."""

        def transform(values: Tensor) -> Tensor:
            return class_probabilities(values.float(), groups)

        probabilities = transform(scaled)
        values = scaled
        if self._refiner is not None:
            size = refine_size(state.layout.original, PAMR_MAX_PIXELS)
            rows = self._row_names(names) if zero_shot else None
            values = self._refine(state, scaled, size, rows)
        threshold = self.config.background_threshold
        labels, confidence = full_resolution_labels(
            values, state.layout.original, threshold, transform=transform, classes=len(names)
        )
        return Proposal(
            label_map=labels,
            confidence=confidence,
            probabilities=probabilities.cpu().numpy(),
            class_names=list(names),
            mean_confidence=float(confidence.mean()),
            background_index=len(names) if threshold is not None else None,
        )


def _check_classes(classes: Sequence[str]) -> list[str]:
    if isinstance(classes, str):
        raise EngineConfigError("Pass a list of class names, e.g. ['cat', 'dog'], not one string")
    names = [str(name) for name in classes]
    if not names:
        raise EngineConfigError("Give at least one class name")
    return names


def create_segmenter(
    config: EngineConfig | None = None,
    allow_missing_weights: bool = False,
    progress: Callable | None = None,
) -> Segmenter:
    """Load the model ``config`` names and return a ready :class:`Segmenter`.

    Missing, partial or corrupt weights raise :class:`WeightsUnavailableError` (its message names
    the fixes), unless ``allow_missing_weights``: then the segmenter's ``available`` is False, its
    ``weights_error`` holds the error, and ``predict`` works with a logit adapter only.
    ``progress`` receives :class:`~annotator.progress.Progress` while weights download.
    """
    from annotator.engine.devices import (
        keep_freed_memory,
        select_device,
        select_dtype,
        set_threads,
    )
    from annotator.engine.heads import get_head
    from annotator.engine.loading import load_backbone, text_store_for

    config = config or EngineConfig()
    set_threads(config.threads)
    keep_freed_memory()
    get_head(config.head)
    device = select_device(config.device)
    dtype = select_dtype(config.precision, device)
    try:
        backbone = load_backbone(config, device, progress)
    except WeightsUnavailableError as error:
        if not allow_missing_weights:
            raise
        return Segmenter(config, None, device, dtype, weights_error=error)
    store = text_store_for(config, backbone) if config.text_cache else None
    return Segmenter(config, backbone, device, dtype, text_store=store)
