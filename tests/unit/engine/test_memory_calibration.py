"""The class memory's confidence is calibrated: in a planted world where a patch that looks like
class A is class A three times out of four, a proposal says 75 %, not 100 %."""

from __future__ import annotations

import numpy as np
import torch

from annotator.engine.backbone import Backbone
from annotator.engine.config import EngineConfig
from annotator.engine.devices import select_device
from annotator.engine.memory import ClassMemory, MemoryAdapter, learn_labels, memory_key
from annotator.engine.memory_calibration import fit_scale
from annotator.engine.segmenter import Segmenter
from annotator.engine.testing import PlantedImageEncoder, PlantedTextEncoder

RED, BLUE = (220, 40, 40), (40, 40, 220)
SIZE, PATCH, FLIPPED = 128, 8, 0.25  # 16 x 16 patches; a quarter of each half shows the other
APPLE, PLUM = 3, 5  # project class ids: apples on the left half, plums on the right


def _segmenter() -> Segmenter:
    """The planted encoder (patch features = colour votes) and text that cannot tell apples
    from plums (neither name is a palette colour): only the memory separates them."""
    palette = torch.tensor([RED, BLUE], dtype=torch.float32) / 255.0
    backbone = Backbone(
        image_encoder=PlantedImageEncoder(palette, PATCH),
        text_encoder=PlantedTextEncoder(["red", "blue"]),
        patch_size=PATCH, embed_dim=4, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
        key="planted-flipped-patches",
    )  # fmt: skip
    config = EngineConfig(model="planted", pretrained=None, device="cpu", short_side=SIZE,
                          refine="none")  # fmt: skip
    return Segmenter(config, backbone, select_device("cpu"), torch.float32)


def _scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image ``[S, S, 3]`` uint8, truth ``[S, S]`` class ids, looks-red ``[16, 16]`` bool):
    apples (left) are red and plums (right) blue, except exactly a quarter of each half's
    patches, which show the other colour."""
    cells = SIZE // PATCH
    red = np.zeros((cells, cells), bool)
    red[:, : cells // 2] = True
    for half in (slice(0, cells // 2), slice(cells // 2, cells)):
        block = red[:, half]
        flat = block.reshape(-1).copy()
        flip = rng.choice(flat.size, int(FLIPPED * flat.size), replace=False)
        flat[flip] = ~flat[flip]
        red[:, half] = flat.reshape(block.shape)
    pixels = np.kron(red, np.ones((PATCH, PATCH), bool))
    image = np.where(pixels[..., None], RED, BLUE).astype(np.uint8)
    truth = np.full((SIZE, SIZE), PLUM, np.uint8)
    truth[:, : SIZE // 2] = APPLE
    return image, truth, red


def test_after_one_reviewed_image_the_confidence_is_the_share_of_pixels_right() -> None:
    segmenter = _segmenter()
    rng = np.random.default_rng(0)
    memory = ClassMemory(memory_key(segmenter))
    image, truth, _ = _scene(rng)
    learn_labels(memory, segmenter, image, truth, 255, "reviewed.png")  # one reviewed image
    names = {APPLE: "apple", PLUM: "plum"}
    uncalibrated = ClassMemory(memory.key, memory.dim, memory.rows, memory.images,
                               memory.updates, memory.centre, memory.centre_count)  # fmt: skip
    for _ in range(3):  # images the memory has not seen
        image, truth, red = _scene(rng)
        segmenter.set_image(image)
        proposal = segmenter.predict(
            ["apple", "plum"], adapter=MemoryAdapter(memory, names, 40.0, PATCH)
        )
        before = segmenter.predict(
            ["apple", "plum"], adapter=MemoryAdapter(uncalibrated, names, 40.0, PATCH)
        )
        right = float((proposal.label_map == np.where(truth == APPLE, 0, 1)).mean())
        # Each patch takes the class its colour was labelled most (red: apple): right 3 times
        # in 4, a little more along the halves' border; the same labels as before the fix.
        centres = np.arange(PATCH // 2, SIZE, PATCH)
        np.testing.assert_array_equal(proposal.label_map[np.ix_(centres, centres)], 1 - red)
        np.testing.assert_array_equal(proposal.label_map, before.label_map)
        assert 0.74 < right < 0.8
        # What the image list shows ("confidence N %") is that share, where it said 100 %.
        assert before.mean_confidence > 0.99
        assert abs(proposal.mean_confidence - right) < 0.03, (proposal.mean_confidence, right)


def test_the_fitted_scale_recovers_a_known_temperature() -> None:
    """Labels drawn from softmax(2.5 * cosines) give back a scale of 2.5."""
    rng = np.random.default_rng(1)
    cosines = rng.uniform(-1, 1, size=(3, 20_000))
    p = np.exp(2.5 * cosines)
    p /= p.sum(axis=0)
    drawn = np.array([rng.choice(3, p=column) for column in p.T])
    targets = np.stack([drawn == k for k in range(3)]).astype(float)
    assert abs(fit_scale(cosines, targets, 40.0) - 2.5) < 0.15
    assert fit_scale(cosines, targets[:1], 40.0) is None  # one class: the labels cannot tell
    separable = np.eye(3)[[0, 1, 2, 0, 1]].T  # each pixel's class scores highest, always
    assert fit_scale(2 * separable - 1, separable, 40.0) == 40.0  # never above the engine's
