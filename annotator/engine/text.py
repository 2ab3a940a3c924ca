"""Class names -> text embeddings: synonyms, prompt-template ensembles and a per-name cache."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from annotator.engine.backbone import TextEncoder
from annotator.engine.config import EngineConfigError
from annotator.engine.devices import small_work_threads

if TYPE_CHECKING:
    from annotator.engine.text_store import TextStore


def split_synonyms(class_name: str) -> list[str]:
    """``"tv; monitor"`` -> ``["tv", "monitor"]``; an empty entry is an error."""
    names = [part.strip() for part in class_name.split(";") if part.strip()]
    if not names:
        raise EngineConfigError(f"Class name {class_name!r} is empty; type at least one word")
    return names


class TextEmbeddings:
    """Embeds class strings with ``encoder``, averaging ``templates`` and synonyms.

    Each distinct name is encoded once (``len(templates)`` prompts) and kept; asking again for a
    known name costs a dictionary lookup. With a ``store`` (:class:`TextStore`), names are also
    kept on disk, so a name costs its template passes once per machine, not once per process.
    """

    def __init__(
        self, encoder: TextEncoder, templates: Sequence[str], store: TextStore | None = None
    ) -> None:
        if not templates or any("{}" not in template for template in templates):
            raise EngineConfigError("Every prompt template must contain '{}' for the class name")
        self.encoder = encoder
        self.templates = tuple(templates)
        self.store = store
        self._names: dict[str, Tensor] = {}
        self.encoded_names = 0

    def __call__(self, classes: Sequence[str]) -> Tensor:
        """``[C, D]`` float32 L2-normalised embeddings of ``classes`` (on the CPU); the names of
        ``"tv; monitor"`` are averaged into one embedding."""
        per_class = [split_synonyms(name) for name in classes]
        self._encode_missing([name for names in per_class for name in names])
        rows = [torch.stack([self._names[name] for name in names]).mean(0) for names in per_class]
        return F.normalize(torch.stack(rows), dim=-1)

    def queries(self, classes: Sequence[str]) -> tuple[Tensor, list[list[str]]]:
        """``[Q, D]`` embeddings of every name of every class, in order (``"tv; monitor"`` gives
        two rows), and the names of each class."""
        per_class = [split_synonyms(name) for name in classes]
        flat = [name for names in per_class for name in names]
        self._encode_missing(flat)
        return torch.stack([self._names[name] for name in flat]), per_class

    def _encode_missing(self, names: list[str]) -> None:
        missing = list(dict.fromkeys(name for name in names if name not in self._names))
        if self.store is not None:
            missing = [name for name in missing if not self._load(name)]
        if not missing:
            return
        with torch.inference_mode(), small_work_threads():
            per_name = self._embed_templates(missing)
        for name, vector in zip(missing, F.normalize(per_name, dim=-1), strict=True):
            self._names[name] = vector.clone()
            if self.store is not None:
                self.store.put(name, self._names[name])
        self.encoded_names += len(missing)

    def _load(self, name: str) -> bool:
        vector = self.store.get(name) if self.store is not None else None
        if vector is not None:
            self._names[name] = vector
        return vector is not None

    def _embed_templates(self, names: list[str]) -> Tensor:
        """``[N, D]`` mean over templates of the normalised prompt embeddings of ``names``."""
        batched = getattr(self.encoder, "encode_templates", None)
        if batched is not None and len(self.templates) > 1:
            rows = batched(self.templates, names)
            if rows is not None:
                return F.normalize(rows.float().cpu(), dim=-1).mean(1)
        per_template = getattr(self.encoder, "encode_template", None)
        if per_template is not None:
            rows = [per_template(template, names).float().cpu() for template in self.templates]
            return F.normalize(torch.stack(rows, dim=1), dim=-1).mean(1)
        prompts = [template.format(name) for name in names for template in self.templates]
        embedded = F.normalize(self.encoder(prompts).float().cpu(), dim=-1)
        return embedded.view(len(names), len(self.templates), -1).mean(1)
