"""Versioned checkpoints: atomic saves, active pointer, readable errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from training.adapter import TrainedAdapter
from training.errors import ModelVersionError
from training.filters import FilterSpec
from training.head import HeadSpec, PixelHead
from training.versions import VersionStore
from training.views import PixelView


def _head(seed: int, clip: int = 0) -> PixelHead:
    torch.manual_seed(seed)
    return PixelHead(HeadSpec(FilterSpec((1.0,)).num_features, clip, 8, (0, 1))).eval()


def test_save_list_activate_and_reload_exactly(tmp_path: Path) -> None:
    store = VersionStore(tmp_path / "models")
    assert store.list() == [] and store.active_id() is None
    first = store.save(_head(0), {0: "a", 1: "b"}, {"after": {"miou": 0.5}}, {"steps": 3})
    second = store.save(_head(1), {0: "a", 1: "b"}, {}, {})
    assert (first.id, second.id) == ("v0001", "v0002") and not first.active
    store.set_active("v0001")
    assert [v.active for v in store.list()] == [True, False]
    assert store.get("v0001").metrics == {"after": {"miou": 0.5}}
    assert store.get("v0001").class_names == {0: "a", 1: "b"}
    x = torch.randn(7, FilterSpec((1.0,)).num_features)
    with torch.no_grad():
        torch.testing.assert_close(store.load_head("v0001")(x), _head(0)(x), rtol=0, atol=0)
    store.set_active(None)
    assert store.active_id() is None
    with pytest.raises(ModelVersionError, match="no model version 'v0009'"):
        store.set_active("v0009")


def test_a_failed_save_leaves_no_version_behind(tmp_path: Path, monkeypatch) -> None:
    store = VersionStore(tmp_path / "models")
    store.save(_head(0), {}, {}, {})

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        store.save(_head(1), {}, {}, {})
    assert [v.id for v in store.list()] == ["v0001"]
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["v0001"]


def test_a_damaged_version_gives_a_readable_error(tmp_path: Path) -> None:
    store = VersionStore(tmp_path / "models")
    version = store.save(_head(0), {}, {}, {})
    (tmp_path / "models" / version.id / "head.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelVersionError, match="cannot be read.*roll back"):
        store.load_head(version.id)


def test_adapter_refuses_features_of_another_model() -> None:
    adapter = TrainedAdapter(_head(0, clip=6), {0: "a", 1: "b"}, FilterSpec((1.0,)))
    image = np.zeros((16, 16, 3), np.uint8)
    view = PixelView(image, np.zeros((4, 1, 1), np.float32), None, ["a", "b"], (16, 16))
    with pytest.raises(ModelVersionError, match="6-dimensional CLIP features.*gives 4"):
        adapter(view)
    view.features = None
    with pytest.raises(ModelVersionError, match="no CLIP weights are loaded"):
        adapter(view)
    view.class_names = ["c"]  # no learned class asked for: the zero-shot answer is kept
    assert adapter(view).shape == (1, 16, 16)


def test_a_worse_new_version_carries_a_note_to_switch_back() -> None:
    from annotator.metrics import compute_metrics
    from training.job import TrainResult
    from training.versions import ModelVersion

    def report(tp: int) -> object:
        matrix = np.array([[tp, 10 - tp], [0, 10]])
        return compute_metrics(matrix, ["a", "b"], images=1)

    version = ModelVersion("v0002", 0.0, {}, {}, {})
    worse = TrainResult(version, [version], report(10), report(5))
    assert "v0002 scores lower on the held-out images" in worse.regression_note
    assert "(mIoU 58.3 vs 100.0)" in worse.regression_note  # IoU a 5/10, b 10/15
    assert TrainResult(version, [version], report(5), report(10)).regression_note is None
