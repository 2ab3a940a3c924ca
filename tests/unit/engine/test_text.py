"""Text: the shortened causal pass equals open_clip's, templates and synonyms average, cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from annotator.engine import EngineConfigError
from annotator.engine.segmenter import Segmenter
from annotator.engine.text import TextEmbeddings, split_synonyms


def test_truncated_text_pass_equals_open_clip(tiny: Segmenter) -> None:
    encoder = tiny.backbone.text_encoder
    prompts = ["a photo of a cat.", "art of the large hairy dog on a red sofa."]
    with torch.inference_mode():
        ours = encoder(prompts)
        full = encoder.model.encode_text(encoder.tokenizer(prompts))
    torch.testing.assert_close(ours, full, atol=1e-5, rtol=1e-4)


def test_template_prefix_reuse_equals_open_clip(tiny: Segmenter) -> None:
    encoder = tiny.backbone.text_encoder
    names = ["cat", "large hairy dog", "tv"]
    for template in ("a photo of a {}.", "{} in a video game.", "art of the {}, drawn"):
        with torch.inference_mode():
            ours = encoder.encode_template(template, names)
            full = encoder.model.encode_text(encoder.tokenizer([template.format(n) for n in names]))
        torch.testing.assert_close(ours, full, atol=1e-5, rtol=1e-4)
    assert len(encoder._prefixes) == 3


def test_synonyms_average_their_embeddings(tiny: Segmenter) -> None:
    both = tiny.encode_text(["tv; monitor"])[0]
    tv, monitor = tiny.encode_text(["tv", "monitor"])
    expected = (tv + monitor) / np.linalg.norm(tv + monitor)
    np.testing.assert_allclose(both, expected, rtol=1e-5, atol=1e-6)


def test_templates_are_configurable_and_averaged() -> None:
    seen: list[list[str]] = []

    def encoder(prompts: list[str]) -> torch.Tensor:
        seen.append(list(prompts))
        return torch.eye(4)[: len(prompts)]

    embed = TextEmbeddings(encoder, ("a {}.", "the {}!"))
    vector = embed(["cat"])
    assert seen == [["a cat.", "the cat!"]]
    torch.testing.assert_close(vector[0], torch.tensor([1.0, 1.0, 0.0, 0.0]) / 2**0.5)
    embed(["cat", "cat; cat"])
    assert len(seen) == 1  # cached per name


def test_bad_names_and_templates_are_refused() -> None:
    assert split_synonyms(" tv ;monitor; ") == ["tv", "monitor"]
    with pytest.raises(EngineConfigError, match="empty"):
        split_synonyms(" ; ")
    with pytest.raises(EngineConfigError, match="{}"):
        TextEmbeddings(lambda prompts: torch.zeros(len(prompts), 2), ("a photo",))


def test_all_templates_in_one_batch_equal_open_clip(tiny: Segmenter) -> None:
    from annotator.engine.config import templates_named

    encoder = tiny.backbone.text_encoder
    templates = templates_named("imagenet")  # prefixes of 1 to 6 words, text after the name
    names = ["cat", "large hairy dog", "tv"]
    with torch.inference_mode():
        ours = encoder.encode_templates(templates, names)
        prompts = [t.format(n) for n in names for t in templates]
        full = encoder.model.encode_text(encoder.tokenizer(prompts)).view(3, len(templates), -1)
    torch.testing.assert_close(ours, full, atol=1e-5, rtol=1e-4)
