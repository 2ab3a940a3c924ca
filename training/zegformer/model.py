"""The trained decoder as the engine's ``SegmentModel``, and its files in a model version.

Files in a version folder: ``zegformer.pt`` (decoder weights) and ``zegformer.json`` (spec,
learned class ids and names, filter scales, best-match IoU before/after), each written to a
temporary name and renamed into place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from training.adapter import class_key
from training.errors import ModelVersionError
from training.filters import FilterCache, FilterSpec
from training.zegformer.decoder import DecoderSpec, MaskDecoder

WEIGHTS = "zegformer.pt"
META = "zegformer.json"
#: A query is kept when its mask covers at least this fraction of the image...
MIN_AREA = 0.002
#: ... and its "no object" probability is below this.
MAX_NO_OBJECT = 0.5


class TrainedSegments:
    """``segment(view)`` -> (masks float32 ``[N, h, w]`` in [0, 1], learned ``p`` float32
    ``[N, C]`` over ``view.class_names`` or None, seen bool ``[C]``): the engine's SegmentModel.

    ``class_names`` maps the learned class ids to their current project names; a view's class is
    seen when its first synonym matches one of them.
    """

    def __init__(
        self, decoder: MaskDecoder, class_names: dict[int, str], filter_spec: FilterSpec
    ) -> None:
        self.decoder = decoder.eval()
        self.class_names = dict(class_names)
        self.filters = FilterCache(filter_spec, max_bytes=128 * 2**20)

    def raw(self, view: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mask logits ``[Q, h, w]`` at the view's working size, segment embeddings or None)."""
        image = np.asarray(view.image)
        filters = torch.from_numpy(self.filters.get(image))
        clip = None
        if self.decoder.spec.clip_channels and view.features is not None:
            clip = torch.from_numpy(np.ascontiguousarray(view.features, dtype=np.float32))
        with torch.inference_mode():
            logits, embeddings = self.decoder(filters, clip)
            logits = F.interpolate(logits[None], size=image.shape[:2], mode="bilinear")[0]
        return logits, embeddings

    def segment(self, view: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        names = list(view.class_names)
        learned = {class_key(n) for n in self.class_names.values()}
        seen = np.array([class_key(n) in learned for n in names], bool)
        logits, embeddings = self.raw(view)
        masks = logits.sigmoid()
        text = getattr(view, "text_embeddings", None)
        if embeddings is None or text is None:
            return self._kept(masks, None).numpy(), None, seen
        with torch.inference_mode():
            scores = self.decoder.class_logits(embeddings, torch.from_numpy(text)).softmax(-1)
        keep = self._keep(masks, scores[:, -1])
        return masks[keep].numpy(), scores[keep, :-1].numpy(), seen

    @staticmethod
    def _keep(masks: torch.Tensor, no_object: torch.Tensor | None) -> torch.Tensor:
        area = (masks > 0.5).flatten(1).float().mean(1)
        keep = area >= MIN_AREA
        if no_object is not None:
            keep &= no_object < MAX_NO_OBJECT
        if not bool(keep.any()):
            keep[int(area.argmax())] = True
        return keep

    def _kept(self, masks: torch.Tensor, no_object: torch.Tensor | None) -> torch.Tensor:
        return masks[self._keep(masks, no_object)]


def _write_atomic(path: Path, write: Any) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    write(temp)
    os.replace(temp, path)


def save_decoder(
    folder: Path, decoder: MaskDecoder, class_names: dict[int, str], sigmas: tuple, report: dict
) -> None:
    """Write the decoder of one version into ``folder`` (the version's folder)."""
    meta = {
        "spec": decoder.spec.to_json(),
        "class_names": {str(k): v for k, v in class_names.items()},
        "filter_sigmas": list(sigmas),
        "report": report,
    }
    _write_atomic(folder / WEIGHTS, lambda p: torch.save(decoder.state_dict(), p))
    text = json.dumps(meta, indent=1, sort_keys=True)
    _write_atomic(folder / META, lambda p: p.write_text(text, encoding="utf-8"))


def read_report(folder: Path) -> dict | None:
    """The best-match IoU report stored with a version's decoder, or None without a decoder."""
    path = Path(folder) / META
    return json.loads(path.read_text(encoding="utf-8")).get("report") if path.exists() else None


def load_segment_model(folder: Path, names: dict[int, str]) -> TrainedSegments | None:
    """The decoder in a version ``folder`` (None when it has none); ``names`` = the project's
    current class names by id. ``ModelVersionError`` when the files are unreadable."""
    folder = Path(folder)
    if not (folder / META).exists():
        return None
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        decoder = MaskDecoder(DecoderSpec.from_json(meta["spec"]))
        state = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)
        decoder.load_state_dict(state)
    except (OSError, KeyError, ValueError, RuntimeError) as error:
        raise ModelVersionError(
            f"The segment decoder of {folder.name} cannot be read ({error}); retrain or roll back."
        ) from error
    learned = {int(k): names[int(k)] for k in meta["class_names"] if int(k) in names}
    return TrainedSegments(decoder, learned, FilterSpec(tuple(meta["filter_sigmas"])))


def attach_segment_model(adapter: Any, folder: Path, names: dict[int, str]) -> Any:
    """Give ``adapter`` the ``segment_model`` stored in the version ``folder`` (if any)."""
    model = load_segment_model(folder, names)
    if model is not None:
        adapter.segment_model = model
    return adapter
