"""Class names -> text embeddings: synonyms, prompt-template ensembles and a per-name cache."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from annotator.engine.backbone import TextEncoder
from annotator.engine.config import EngineConfigError
from annotator.engine.devices import small_work_threads


def split_synonyms(class_name: str) -> list[str]:
    """``"tv; monitor"`` -> ``["tv", "monitor"]``; an empty entry is an error."""
    names = [part.strip() for part in class_name.split(";") if part.strip()]
    if not names:
        raise EngineConfigError(f"Class name {class_name!r} is empty; type at least one word")
    return names


class TextEmbeddings:
    """Embeds class strings with ``encoder``, averaging ``templates`` and synonyms.

    Each distinct name is encoded once (``len(templates)`` prompts) and kept; asking again for a
    known name costs a dictionary lookup.
    """

    def __init__(self, encoder: TextEncoder, templates: Sequence[str]) -> None:
        if not templates or any("{}" not in template for template in templates):
            raise EngineConfigError("Every prompt template must contain '{}' for the class name")
        self.encoder = encoder
        self.templates = tuple(templates)
        self._names: dict[str, Tensor] = {}
        self.encoded_names = 0

    def __call__(self, classes: Sequence[str]) -> Tensor:
        """``[C, D]`` float32 L2-normalised embeddings of ``classes`` (on the CPU)."""
        per_class = [split_synonyms(name) for name in classes]
        self._encode_missing([name for names in per_class for name in names])
        rows = [torch.stack([self._names[name] for name in names]).mean(0) for names in per_class]
        return F.normalize(torch.stack(rows), dim=-1)

    def _encode_missing(self, names: list[str]) -> None:
        missing = list(dict.fromkeys(name for name in names if name not in self._names))
        if not missing:
            return
        with torch.inference_mode(), small_work_threads():
            per_name = self._embed_templates(missing)
        for name, vector in zip(missing, F.normalize(per_name, dim=-1), strict=True):
            self._names[name] = vector.clone()
        self.encoded_names += len(missing)

    def _embed_templates(self, names: list[str]) -> Tensor:
        """``[N, D]`` mean over templates of the normalised prompt embeddings of ``names``."""
        per_template = getattr(self.encoder, "encode_template", None)
        if per_template is not None:
            rows = [per_template(template, names).float().cpu() for template in self.templates]
            return F.normalize(torch.stack(rows, dim=1), dim=-1).mean(1)
        prompts = [template.format(name) for name in names for template in self.templates]
        embedded = F.normalize(self.encoder(prompts).float().cpu(), dim=-1)
        return embedded.view(len(names), len(self.templates), -1).mean(1)
