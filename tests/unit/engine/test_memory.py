"""The MCIBI class memory: update rule, persistence, invalidation, and labels beating text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotator.engine.features import Layout
from annotator.engine.memory import (
    ClassMemory,
    MemoryAdapter,
    learn_labels,
    memory_key,
    momentum,
)
from annotator.engine.testing import create_planted_segmenter
from tests.unit.engine.memory_world import CLASSES, COLOURS, create_confused_segmenter, iou, scene

NAMES = dict(enumerate(CLASSES))  # class id = index in the world


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_update_rule_matches_a_hand_computation() -> None:
    layout = Layout(original=(2, 4), working=(2, 4), padded=(2, 4), patch=2)  # grid 1 x 2
    memory = ClassMemory("k")
    first = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32).T.reshape(2, 1, 2)  # D=2, patches
    labels = np.full((2, 4), 255, np.uint8)
    labels[:, :2] = 3  # 4 pixels of class 3 in patch 0
    labels[0, 2] = 3  # 1 pixel in patch 1
    assert memory.update(first, labels, layout, 255, "a.png") == [3]
    np.testing.assert_allclose(memory.rows[3], [0.8, 0.2], atol=1e-6)  # first sight: the mean

    second = np.array([[0.6, 0.8], [1.0, 0.0]], np.float32).T.reshape(2, 1, 2)
    memory.update(second, np.full((2, 4), 3, np.uint8), layout, 255, "b.png")
    m = np.array([0.8, 0.2])
    s0, s1 = _unit(m) @ [0.6, 0.8], _unit(m) @ [1.0, 0.0]
    w0, w1 = 4 * (1 - s0), 4 * (1 - s1)  # pixels unlike the memory weigh more
    observed = (w0 * np.array([0.6, 0.8]) + w1 * np.array([1.0, 0.0])) / (w0 + w1)
    rate = 0.9 * 2**-0.9
    np.testing.assert_allclose(memory.rows[3], (1 - rate) * m + rate * observed, atol=1e-6)
    assert memory.images == {3: 2} and memory.updates == {3: 2}
    assert momentum(1) == pytest.approx(0.9 * 2**-0.9)
    assert momentum(3) == pytest.approx(0.9 * 4**-0.9)


def test_unchanged_labels_are_not_learned_twice_and_changed_ones_do_not_recount() -> None:
    layout = Layout((2, 4), (2, 4), (2, 4), 2)
    features = np.ones((2, 1, 2), np.float32)
    labels = np.zeros((2, 4), np.uint8)
    memory = ClassMemory("k")
    memory.update(features, labels, layout, 255, "a.png")
    assert memory.update(features, labels, layout, 255, "a.png") == []
    labels[0, 0] = 1
    assert memory.update(features, labels, layout, 255, "a.png") == [0, 1]
    assert memory.images == {0: 1, 1: 1} and memory.updates == {0: 2, 1: 1}
    memory.update(features, np.ones((2, 4), np.uint8), layout, 255, "b.png")
    labels[0, 1] = 1
    memory.update(features, labels, layout, 255, "a.png")  # class 1 again in a.png: once
    assert memory.images == {0: 1, 1: 2} and memory.updates == {0: 3, 1: 3}
    assert memory.centre_count == 2


def test_persistence_round_trip_and_invalidation(tmp_path: Path) -> None:
    segmenter = create_confused_segmenter()
    memory = ClassMemory(memory_key(segmenter))
    image, truth = scene(np.random.default_rng(0))
    learn_labels(memory, segmenter, image, truth.astype(np.uint8), 255, "x.png")
    memory.save(tmp_path)
    again = ClassMemory.load(tmp_path, memory_key(segmenter))
    assert again.stale_key is None and again.learned == memory.learned
    assert again.image_classes == memory.image_classes == {"x.png": [0, 1, 2]}
    assert again.images == memory.images and again.updates == memory.updates
    for class_id, row in memory.rows.items():
        np.testing.assert_array_equal(again.rows[class_id], row)
    np.testing.assert_array_equal(again.centre, memory.centre)
    for changed in ({"short_side": 96}, {"head": "sclip"}, {"window": 32}):
        other = memory_key(create_confused_segmenter(**changed))
        assert other != memory_key(segmenter)
        stale = ClassMemory.load(tmp_path, other)
        assert stale.rows == {} and stale.stale_key == memory_key(segmenter)
    (tmp_path / "memory.npz").write_bytes(b"not a memory")
    broken = ClassMemory.load(tmp_path, memory_key(segmenter))
    assert broken.rows == {} and "unreadable" in broken.stale_key


def _propose(segmenter, images, adapter) -> np.ndarray:  # noqa: ANN001
    maps = []
    for image in images:
        segmenter.set_image(image)
        maps.append(segmenter.predict(list(CLASSES), adapter=adapter).label_map)
    return np.stack(maps)


def test_labels_win_where_the_text_points_at_another_class() -> None:
    segmenter = create_confused_segmenter()
    oracle = create_planted_segmenter(  # the same images, with text that names them right
        {n: COLOURS[n] for n in CLASSES}, patch_size=8, short_side=64, device="cpu"
    )
    rng = np.random.default_rng(1)
    memory = ClassMemory(memory_key(segmenter))
    for i in range(3):  # three labelled images: grass and cat labelled, dog never
        image, truth = scene(rng)
        labels = np.where(truth == 2, 255, truth).astype(np.uint8)
        learn_labels(memory, segmenter, image, labels, 255, f"train{i}.png")
    tests = [scene(rng) for _ in range(5)]
    images, truth = [t[0] for t in tests], np.stack([t[1] for t in tests])
    zero_shot = _propose(segmenter, images, None)
    adapter = MemoryAdapter(memory, NAMES, segmenter.config.logit_scale, segmenter.patch_size)
    with_memory = _propose(segmenter, images, adapter)
    best = _propose(oracle, images, None)
    cat, dog, grass = (CLASSES.index(n) for n in ("cat", "dog", "grass"))
    assert iou(truth, zero_shot, cat) < 0.05 and iou(truth, zero_shot, dog) < 0.05
    # Labelled cat: its memory wins over its text, close to what the right text would give
    # (patch features blur the boundaries, for the oracle too).
    assert iou(truth, with_memory, cat) > max(0.7, 0.85 * iou(truth, best, cat))
    # Novel dog: its own text, no longer stolen by cat.
    assert iou(truth, with_memory, dog) > max(0.7, 0.9 * iou(truth, best, dog))
    assert iou(truth, with_memory, grass) > iou(truth, zero_shot, grass)
    assert memory.counts() == {grass: 3, cat: 3}


def test_novel_classes_keep_their_text_score_exactly() -> None:
    segmenter = create_confused_segmenter()
    image, truth = scene(np.random.default_rng(2))
    memory = ClassMemory(memory_key(segmenter))
    learn_labels(memory, segmenter, image, np.where(truth == 1, 1, 255).astype(np.uint8), 255)
    seen = {}
    adapter = MemoryAdapter(memory, NAMES, 40.0, segmenter.patch_size)
    segmenter.set_image(image)
    segmenter.predict(
        list(CLASSES), adapter=lambda view: seen.setdefault("v", view) and adapter(view)
    )
    view = seen["v"]
    out = adapter(view)
    np.testing.assert_array_equal(out[[0, 2]], view.zero_shot_logits[[0, 2]])
    assert not np.array_equal(out[1], view.zero_shot_logits[1])
    off = MemoryAdapter(memory, NAMES, 40.0, segmenter.patch_size, disabled={1})
    np.testing.assert_array_equal(off(view), view.zero_shot_logits)

    # Over a trained version: its logits for the novel classes pass through untouched.
    def trained(v) -> np.ndarray:  # noqa: ANN001
        return v.zero_shot_logits * 2 + 1

    over = MemoryAdapter(memory, NAMES, 40.0, segmenter.patch_size, inner=trained)(view)
    np.testing.assert_array_equal(over[[0, 2]], trained(view)[[0, 2]])
    assert not np.array_equal(over[1], trained(view)[1])


def _direct_scores(features: np.ndarray, rows: np.ndarray, centre: np.ndarray, scale: float):
    """The MCIBI fusion written out in feature space (the reference for the fast version)."""
    pixels = features.reshape(features.shape[0], -1).T - centre
    pixels /= np.linalg.norm(pixels, axis=1, keepdims=True)
    memory = rows - centre
    memory /= np.linalg.norm(memory, axis=1, keepdims=True)
    logits = scale * pixels @ memory.T
    weight = np.exp(logits - logits.max(axis=1, keepdims=True))
    weight /= weight.sum(axis=1, keepdims=True)
    context = weight @ memory
    rho = np.maximum(0, (context / np.linalg.norm(context, axis=1, keepdims=True) * pixels).sum(1))
    fused = pixels + rho[:, None] * context
    fused /= np.linalg.norm(fused, axis=1, keepdims=True)
    return (fused @ memory.T).T.reshape(len(rows), *features.shape[1:])


def test_fused_scores_equal_the_feature_space_formula() -> None:
    import torch

    from annotator.engine.memory import _memory_scores

    rng = np.random.default_rng(3)
    features = rng.normal(size=(16, 5, 7)).astype(np.float32)
    features /= np.linalg.norm(features, axis=0, keepdims=True)
    rows, centre = rng.normal(size=(3, 16)).astype(np.float32), rng.normal(size=16) * 0.3
    centre = centre.astype(np.float32)
    fast = _memory_scores(*(torch.from_numpy(a) for a in (features, rows, centre)), 10.0)
    np.testing.assert_allclose(
        fast.numpy(), _direct_scores(features, rows, centre, 10.0), atol=1e-5
    )


def test_patch_counts_agree_for_8_and_16_bit_maps_and_large_maps_are_subsampled() -> None:
    from annotator.engine.features import plan_layout
    from annotator.engine.memory import patch_class_counts

    rng = np.random.default_rng(4)
    labels = rng.choice([0, 3, 7, 255], size=(90, 70)).astype(np.uint8)
    layout = plan_layout((90, 70), 48, 200, 8)
    ids8, counts8 = patch_class_counts(labels, layout, 255)
    wide = labels.astype(np.uint16)
    wide[labels == 255] = 65535
    ids16, counts16 = patch_class_counts(wide, layout, 65535)
    assert ids8.tolist() == ids16.tolist() == [0, 3, 7]
    np.testing.assert_array_equal(counts8, counts16)
    assert counts8.sum() == (labels != 255).sum()
    big = np.zeros((3000, 2000), np.uint8)
    big[:1500] = 1
    ids, counts = patch_class_counts(big, plan_layout(big.shape, 64, 200, 16), 255)
    assert ids.tolist() == [0, 1] and counts.sum() <= 4_000_000
    assert counts[0].sum() == pytest.approx(counts[1].sum(), rel=0.01)


def _naive_counts(labels: np.ndarray, layout, unlabeled: int) -> dict[int, np.ndarray]:  # noqa: ANN001
    """Per class, per patch: loop over pixels, mapping each through the working resolution."""
    gh, gw = layout.grid
    out: dict[int, np.ndarray] = {}
    for y in range(labels.shape[0]):
        for x in range(labels.shape[1]):
            value = int(labels[y, x])
            if value == unlabeled:
                continue
            wy = (y + 0.5) * (layout.working[0] / labels.shape[0])
            wx = (x + 0.5) * (layout.working[1] / labels.shape[1])
            row, col = min(int(wy // layout.patch), gh - 1), min(int(wx // layout.patch), gw - 1)
            out.setdefault(value, np.zeros(gh * gw))[row * gw + col] += 1
    return out


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    short_side=st.integers(16, 64),
    patch=st.sampled_from([4, 8, 16]),
    seed=st.integers(0, 2**16),
)
def test_patch_counts_match_a_pixel_loop(height, width, short_side, patch, seed) -> None:  # noqa: ANN001
    from annotator.engine.features import plan_layout
    from annotator.engine.memory import patch_class_counts

    labels = np.random.default_rng(seed).choice([1, 2, 200, 255], size=(height, width))
    labels = labels.astype(np.uint8)
    layout = plan_layout((height, width), short_side, 4 * short_side, patch)
    ids, counts = patch_class_counts(labels, layout, 255)
    expected = _naive_counts(labels, layout, 255)
    assert ids.tolist() == sorted(expected)
    for class_id, row in zip(ids.tolist(), counts, strict=True):
        np.testing.assert_array_equal(row, expected[class_id])
