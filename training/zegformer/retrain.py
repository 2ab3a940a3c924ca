"""The retraining step that trains the segment decoder and stores it in the new model version.

Called by :func:`training.job.train` only when the engine's proposer is "zegformer".
"""

from __future__ import annotations

from collections.abc import Generator
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from annotator.progress import Progress, ShouldStop
from training.zegformer.decoder import DecoderSpec, MaskDecoder
from training.zegformer.fit import DecoderSettings, SegmentSample, build_sample, fit_decoder
from training.zegformer.metrics import mean_best_match_iou
from training.zegformer.model import TrainedSegments, save_decoder


def _truth(project: Any, relpath: str, class_ids: list[int], size: tuple[int, int]) -> Any:
    """Human labels of ``relpath`` as prompt positions int64 ``[h, w]`` (-1 = none), or None."""
    from training.evaluate import positions_lut
    from training.views import resize_labels

    labels = project.load_labels(relpath)
    if labels is None:
        return None
    return positions_lut(project, class_ids)[resize_labels(labels, size)]


def _views(project: Any, segmenter: Any, relpaths: Any, prompts: list[str], config: Any) -> list:
    from training.dataset import class_prompts, load_view

    class_ids, _ = class_prompts(project)
    pairs = []
    for relpath in relpaths:
        view = load_view(project, segmenter, relpath, prompts, config)
        truth = _truth(project, relpath, class_ids, view.size)
        if truth is not None:
            pairs.append((view, truth))
    return pairs


def grouping_index(view: Any, count: int) -> np.ndarray:
    """The unsupervised grouping's segment index map int32 ``[h, w]`` of a view."""
    from annotator.engine.proposers.grouping import GroupingSettings, group_image

    features = None if view.features is None else torch.from_numpy(view.features)
    patch = view.patch_size or 16
    return group_image(view.image, features, patch, GroupingSettings(count=count))[1]


def decoder_index(model: TrainedSegments, view: Any, text: np.ndarray | None) -> np.ndarray:
    """The trained decoder's segment index map int32 ``[h, w]`` (argmax of its kept masks)."""
    probe = SimpleNamespace(
        image=view.image, features=view.features, class_names=view.class_names,
        text_embeddings=text,
    )  # fmt: skip
    masks, _, _ = model.segment(probe)
    return masks.argmax(axis=0).astype(np.int32)


def _samples(pairs: list, cache: Any, stride: int) -> list[SegmentSample]:
    built = [build_sample(cache.get(v.image), v.features, truth, stride) for v, truth in pairs]
    return [s for s in built if s is not None]


def train_for_version(
    project: Any,
    segmenter: Any,
    split: Any,
    version_id: str,
    config: Any,
    should_stop: ShouldStop,
    settings: DecoderSettings | None = None,
) -> Generator[Progress, None, dict]:
    """Train the decoder on the split's training images and save it into ``version_id``.

    Returns (and stores) ``{"before", "after", "images"}``: mean best-match IoU of the
    unsupervised grouping and of the trained decoder against the human segments of the held-out
    images (the training images when none is held out).
    """
    from training.dataset import class_prompts
    from training.filters import FilterCache
    from training.models import version_store

    settings = settings or DecoderSettings()
    class_ids, prompts = class_prompts(project)
    train_pairs = _views(project, segmenter, split.train, prompts, config)
    cache = FilterCache(config.filter_spec, 512 * 2**20)
    samples = _samples(train_pairs, cache, settings.stride)
    if not samples:
        return {}
    text = segmenter.encode_text(prompts) if segmenter.available else None
    spec = _spec(samples, text, segmenter.config.segments, settings)
    decoder = yield from fit_decoder(spec, samples, text, settings, should_stop)
    names = {info.id: info.name for info in project.list_classes()}
    present = {int(c) for s in samples for c in s.classes}
    learned = {class_ids[p]: names[class_ids[p]] for p in sorted(present)}
    scored = _views(project, segmenter, split.holdout, prompts, config) or train_pairs
    report = _report(decoder, learned, config, scored, text, segmenter.config.segments)
    save_decoder(version_store(project).folder / version_id, decoder, learned,
                 config.filter_sigmas, report)  # fmt: skip
    yield Progress(1, 1, "segment decoder saved", {"phase": "segments", **report})
    return report


def _spec(
    samples: list[SegmentSample], text: np.ndarray | None, queries: int, settings: DecoderSettings
) -> DecoderSpec:
    clip = samples[0].clip
    return DecoderSpec(
        filter_channels=int(samples[0].filters.shape[0]),
        clip_channels=0 if clip is None else int(clip.shape[0]),
        hidden=settings.hidden,
        queries=max(2, min(32, queries)),
        text_channels=0 if text is None else int(text.shape[1]),
        stride=settings.stride,
    )


def _report(
    decoder: MaskDecoder, learned: dict, config: Any, pairs: list, text: Any, count: int
) -> dict:
    from training.filters import FilterSpec

    model = TrainedSegments(decoder, learned, FilterSpec(tuple(config.filter_sigmas)))
    before = mean_best_match_iou([(grouping_index(v, count), t) for v, t in pairs])
    after = mean_best_match_iou([(decoder_index(model, v, text), t) for v, t in pairs])
    return {"before": before, "after": after, "images": len(pairs)}
