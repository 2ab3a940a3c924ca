"""Every preset computes what its paper describes: the engine's logits equal a plain float64
re-derivation (tests/unit/engine/protocol_reference.py) within 1e-4, and the label maps agree."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from annotator.engine import create_segmenter
from annotator.engine.presets import PRESETS, config_from_preset, preset_settings
from annotator.engine.testing import TINY_MODEL
from tests.unit.engine.protocol_reference import reference_protocol

CLASSES = ["cat; kitten", "dog", "grass; lawn; turf", "sky"]


def _image(height: int, width: int) -> np.ndarray:
    """Smooth colour regions with texture and sharp edges (PAMR has edges to follow)."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 60, (height, width, 3)).astype(np.uint8)
    image[: height // 3] += np.array([100, 150, 190], np.uint8)
    image[height // 2 :, : width // 2] += np.array([160, 60, 40], np.uint8)
    image[height // 2 :, width // 2 :] += np.array([30, 140, 50], np.uint8)
    return image


#: Original sizes whose working size (and window offsets) are whole patches at each short side
#: (336 x 448 and 448 x 560); small originals keep the float64 PAMR reference quick.
SIZES = {336: (84, 112), 448: (96, 120)}


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_equals_the_papers_forward_pass(name: str) -> None:
    settings = preset_settings(name)
    # 80 templates on the tiny ViT cost little; fewer keep the float64 reference quick.
    templates = settings["templates"][:12]
    config = config_from_preset(name, model=TINY_MODEL, pretrained="none", templates=templates)
    config.text_cache = False
    segmenter = create_segmenter(config)
    image = _image(*SIZES[settings["short_side"]])
    segmenter.set_image(image)
    engine_logits = segmenter.query_logits(CLASSES)
    proposal = segmenter.predict(CLASSES)

    model = copy.deepcopy(segmenter.backbone.text_encoder.model).double()
    import open_clip

    with torch.no_grad():
        logits, labels, margin = reference_protocol(
            model,
            open_clip.get_tokenizer(TINY_MODEL),
            image,
            [[n.strip() for n in c.split(";")] for c in CLASSES],
            {**settings, "templates": templates},
        )
    assert engine_logits.shape == tuple(logits.shape) == (7, *image.shape[:2])  # one row a name
    np.testing.assert_allclose(engine_logits, logits.numpy(), atol=1e-4, rtol=0)
    decided = margin.numpy() > 1e-5  # where the reference itself is not a tie
    assert decided.mean() > 0.99
    np.testing.assert_array_equal(proposal.label_map[decided], labels.numpy()[decided])


def test_presets_set_what_the_papers_ran() -> None:
    assert config_from_preset().preset == "naclip-stuff"
    stuff = config_from_preset("naclip-stuff")
    assert (stuff.head, stuff.short_side, stuff.window, stuff.stride) == ("naclip", 336, 224, 112)
    assert stuff.refine == "pamr" and stuff.synonyms == "max" and len(stuff.templates) == 80
    voc = config_from_preset("naclip-voc20")
    assert (voc.window, voc.short_side, voc.refine) == (0, 336, "pamr")
    clear = config_from_preset("clearclip")
    assert (clear.window, clear.stride, clear.short_side, clear.logit_scale) == (448, 224, 448, 50)
    assert config_from_preset("sclip-stuff").short_side == 448
    assert config_from_preset("fast").templates == ("a photo of a {}.",)


def test_flags_override_a_preset() -> None:
    config = config_from_preset("clearclip", short_side=336, refine="pamr", window=224)
    assert (config.head, config.short_side, config.refine, config.logit_scale) == (
        "clearclip", 336, "pamr", 50.0)  # fmt: skip
    assert config.window == 224 and config.stride is None  # a window given alone: half stride


def test_unknown_preset_lists_the_choices() -> None:
    from annotator.engine import EngineConfigError

    with pytest.raises(EngineConfigError, match="naclip-voc20.*fast"):
        config_from_preset("naclip-voc")
