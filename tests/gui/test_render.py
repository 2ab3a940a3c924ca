"""Qt-free display helpers: pyramid levels and overlay colouring of one tile."""

from __future__ import annotations

import numpy as np

from annotator.gui._labelops import Rect, empty_labels
from annotator.gui._propose import to_class_ids
from annotator.gui._render import (
    LABEL_ALPHA,
    PROPOSAL_ALPHA,
    build_pyramid,
    make_lut,
    overlay_tile,
)
from annotator.gui._settings import AppSettings, load_settings, save_settings


def test_pyramid_halves_until_it_fits() -> None:
    levels = build_pyramid(np.zeros((3000, 4100, 3), np.uint8))
    assert [lv.shape[:2] for lv in levels] == [(3000, 4100), (1500, 2050), (750, 1025), (375, 512)]


def _luts(hidden: set[int] = frozenset()) -> tuple[np.ndarray, np.ndarray]:
    colors = {0: (255, 0, 0), 1: (0, 0, 255)}
    return (
        make_lut(colors, hidden, np.dtype(np.uint8), LABEL_ALPHA),
        make_lut(colors, hidden, np.dtype(np.uint8), PROPOSAL_ALPHA),
    )


def test_labels_cover_proposals_and_unlabeled_is_transparent() -> None:
    labels = empty_labels(4, 4)
    labels[0, 0] = 0
    proposal = np.full((4, 4), 1, np.uint8)
    proposal[3, 3] = 255
    rgba = overlay_tile(labels, proposal, Rect(0, 0, 4, 4), 1, *_luts())
    assert tuple(rgba[0, 0]) == (255, 0, 0, LABEL_ALPHA)
    assert tuple(rgba[1, 1]) == (0, 0, 255, PROPOSAL_ALPHA)
    assert rgba[3, 3, 3] == 0


def test_hidden_classes_and_coarse_levels() -> None:
    labels = np.zeros((8, 8), np.uint8)
    labels[:, 4:] = 1
    rgba = overlay_tile(labels, None, Rect(0, 0, 4, 4), 2, *_luts(hidden={1}))
    assert rgba.shape == (4, 4, 4)
    assert (rgba[:, :2, 3] == LABEL_ALPHA).all() and (rgba[:, 2:, 3] == 0).all()


def test_a_proposal_of_another_size_is_never_drawn() -> None:
    rgba = overlay_tile(
        empty_labels(4, 4), np.ones((2, 2), np.uint8), Rect(0, 0, 4, 4), 1, *_luts()
    )
    assert (rgba[..., 3] == 0).all()


def test_engine_indices_become_class_ids_and_background_unlabeled() -> None:
    indices = np.array([[0, 1], [2, 3]], np.uint8)  # 2 = background index for 2 classes
    ids = to_class_ids(indices, (7, 3), np.dtype(np.uint8))
    assert ids.tolist() == [[7, 3], [255, 255]]


def test_settings_round_trip_and_recent_list(fresh_settings) -> None:
    settings = AppSettings(device="cpu", threads=3)
    for folder in ("/a", "/b", "/a"):
        settings.add_recent(folder)
    save_settings(settings)
    loaded = load_settings()
    assert loaded.device == "cpu" and loaded.threads == 3 and loaded.recent == ["/a", "/b"]
    assert (fresh_settings / "settings.json").exists()
    (fresh_settings / "settings.json").write_text("{broken")
    assert load_settings() == AppSettings()
