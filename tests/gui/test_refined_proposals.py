"""Proposals refined with PAMR, as the default presets do, from the app's engine thread: the
compiled loops (when built) run inside the Qt process, on the worker's threads, and the user
sees edges where the colours change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _gui_helpers import PALETTE, TIMEOUT, add_class, class_ids, make_scene, open_window
from PIL import Image

from annotator.engine import _pamr_parts


def test_pamr_refined_proposal_follows_the_colour_edges(qtbot, tmp_path: Path, monkeypatch) -> None:
    from annotator.engine.testing import create_planted_segmenter
    from annotator.gui import _engine

    folder = tmp_path / "images"
    folder.mkdir()
    for index, split in enumerate((37, 45, 52)):  # edges off the 8-pixel patch grid
        Image.fromarray(make_scene(split=split)).save(folder / f"scene_{index}.png")
    calls: list[str] = []
    for name in ("weights", "steps"):
        original = getattr(_pamr_parts, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(_pamr_parts, name, counted)

    def factory(config: object) -> object:
        return create_planted_segmenter(PALETTE, device="cpu", short_side=96, refine="pamr")

    monkeypatch.setattr(_engine, "create_app_segmenter", factory)
    window = open_window(qtbot, folder)
    for name in ("sky", "grass", "road"):
        add_class(window, name)
    ids = class_ids(window)
    truth_image = make_scene(split=37)
    truth = np.full(truth_image.shape[:2], ids["grass"])
    truth[(truth_image == PALETTE["sky"]).all(axis=-1)] = ids["sky"]
    truth[(truth_image == PALETTE["road"]).all(axis=-1)] = ids["road"]

    def proposed() -> bool:
        bundle = window.workspace.current
        return (
            bundle is not None and bundle.proposal is not None and bundle.relpath == "scene_0.png"
        )

    qtbot.waitUntil(proposed, timeout=TIMEOUT)
    proposal = window.workspace.current.proposal
    # The planted features are per 8 x 8 patch, so unrefined boundaries fall on the patch grid
    # (2% of the pixels wrong here); PAMR moves them onto the colour edges: every pixel is right.
    assert np.array_equal(proposal, truth)
    if _pamr_parts.available():
        assert {"weights", "steps"} <= set(calls)
    window.close()
