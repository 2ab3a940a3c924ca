"""Text embeddings on disk: a name costs its template passes once per machine, and a damaged or
concurrently written cache file never gives a wrong embedding."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from annotator.engine import EngineConfig, create_segmenter
from annotator.engine.config import templates_named
from annotator.engine.testing import TINY_MODEL
from annotator.engine.text_store import TextStore


def _segmenter(cache: Path, templates: str = "ensemble", **settings: object):  # noqa: ANN202
    config = EngineConfig(
        model=TINY_MODEL,
        pretrained=None,
        short_side=64,
        templates=templates_named(templates),
        cache_dir=str(cache),
        **settings,
    )
    return create_segmenter(config)


def test_a_name_is_encoded_once_per_machine(tmp_path: Path) -> None:
    first = _segmenter(tmp_path)
    expected = first.encode_text(["cat", "tv; monitor"])
    assert first._text.encoded_names == 3
    second = _segmenter(tmp_path)  # as a new process would: nothing in memory
    np.testing.assert_array_equal(second.encode_text(["cat", "tv; monitor"]), expected)
    assert second._text.encoded_names == 0
    second.encode_text(["zebra"])
    assert second._text.encoded_names == 1


def test_each_template_set_and_model_has_its_own_entries(tmp_path: Path) -> None:
    _segmenter(tmp_path, "ensemble").encode_text(["cat"])
    other = _segmenter(tmp_path, "single")
    other.encode_text(["cat"])
    assert other._text.encoded_names == 1
    gelu = _segmenter(tmp_path, "ensemble", quick_gelu=True)
    gelu.encode_text(["cat"])
    assert gelu._text.encoded_names == 1  # another activation is another model
    off = _segmenter(tmp_path, "ensemble", text_cache=False)
    off.encode_text(["cat"])
    assert off._text.encoded_names == 1


@pytest.mark.parametrize(
    "damage",
    [b"", b"\x93NUMPY garbage", None],  # empty, broken, a valid array of the wrong length
)
def test_damaged_files_are_recomputed(tmp_path: Path, damage: bytes | None) -> None:
    first = _segmenter(tmp_path)
    expected = first.encode_text(["cat"])
    (entry,) = [p for p in tmp_path.rglob("*.npy")]
    if damage is None:
        np.save(entry, np.ones(5, np.float32))
    else:
        entry.write_bytes(damage)
    again = _segmenter(tmp_path)
    np.testing.assert_allclose(again.encode_text(["cat"]), expected, atol=1e-6)
    assert again._text.encoded_names == 1
    assert np.load(entry).shape == (32,)  # rewritten whole


def test_concurrent_writers_leave_whole_files(tmp_path: Path) -> None:
    store = TextStore(tmp_path, "model-key", ("a {}",), 64)
    vectors = [torch.nn.functional.normalize(torch.randn(64), dim=0) for _ in range(8)]
    errors: list[BaseException] = []

    def write(vector: torch.Tensor) -> None:
        try:
            for _ in range(20):
                store.put("cat", vector)
                got = store.get("cat")
                assert got is not None and any(torch.equal(got, v) for v in vectors)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=write, args=(v,)) for v in vectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert not list(store.folder.glob(".*.tmp"))


def test_an_unwritable_cache_only_costs_time(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    segmenter = _segmenter(blocked)
    assert segmenter.encode_text(["cat"]).shape == (1, 32)
