"""PAMR as NACLIP publishes it: equal to a plain stacked re-derivation, exact on a colour edge,
through both implementations (torch operations and the compiled loops); its fast layout (flat
buffer, bands) and the cache of refined rows change no result."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch

from annotator.engine import _pamr_parts, refine
from annotator.engine.refine import PAMR_DILATIONS, PAMR_STEPS, pamr, pamr_kernel
from tests.unit.engine.protocol_reference import pamr as reference_pamr


def _can_build_extensions() -> bool:
    """Whether this Python could have built the C extension: its compiler and headers are here."""
    compiler = (sysconfig.get_config_var("CC") or "").split()
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    return bool(compiler) and shutil.which(compiler[0]) is not None and headers.is_file()


def test_the_compiled_loops_are_built_wherever_a_compiler_is() -> None:
    """The extension is optional, so a failed build would pass silently and PAMR run 2x slower:
    where a compiler and Python's headers exist, the loops must be there (this guards the
    skips below, which happen only on machines that cannot build them)."""
    if not _can_build_extensions():
        pytest.skip("no C compiler or Python headers on this machine: the torch path runs")
    assert _pamr_parts.available(), (
        "annotator.engine._pamr_native was not built although a C compiler is installed: "
        "reinstall the package (pip install -e .) and read the build output"
    )


@pytest.fixture(params=["torch", "compiled"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test through the torch operations, then through the compiled loops."""
    if request.param == "compiled" and not _pamr_parts.available():
        # Only where no C compiler could build them (see the test above); the torch path is
        # still checked on such machines.
        pytest.skip("the compiled PAMR loops were not built (no C compiler at install)")
    monkeypatch.setattr(refine, "USE_NATIVE", request.param == "compiled")
    return request.param


@pytest.mark.usefixtures("implementation")
def test_pamr_equals_the_published_description() -> None:
    rng = np.random.default_rng(5)
    image = torch.from_numpy(rng.random((3, 50, 70)))
    image[:, 20:, 30:] += 0.8  # a region with its own colour
    logits = torch.from_numpy(rng.normal(0, 4, (1, 3, 50, 70)))
    expected = reference_pamr(image[None], logits)[0]
    np.testing.assert_allclose(pamr(image, logits[0]).numpy(), expected.numpy(), atol=1e-4)
    assert PAMR_DILATIONS == (8, 16)


@pytest.mark.usefixtures("implementation")
@pytest.mark.parametrize("offset", [-12, -8, -4, 4, 8, 12])
def test_pamr_puts_a_coarse_boundary_exactly_on_the_colour_edge(offset: int) -> None:
    """A boundary up to 12 px off (about one ViT patch at working size) ends on the edge."""
    height, width, edge = 64, 96, 40
    noise = np.random.default_rng(0).normal(0, 0.02, (3, height, width))
    image = torch.from_numpy(noise).float()
    image[:, :, edge:] += 1.0
    logits = torch.zeros(2, height, width)
    logits[0, :, : edge + offset] = 1.0
    logits[1, :, edge + offset :] = 1.0
    labels = pamr(image, logits).argmax(dim=0)
    assert (labels[:, :edge] == 0).all() and (labels[:, edge:] == 1).all()


@pytest.mark.usefixtures("implementation")
@pytest.mark.parametrize("size", [(5, 37), (3, 50), (40, 17), (1, 1)])
def test_pamr_equals_the_description_on_images_smaller_than_a_dilation(size: tuple) -> None:
    """The flat padded buffer replicates edges exactly as padding each step would."""
    rng = np.random.default_rng(sum(size))
    image = torch.from_numpy(rng.random((3, *size)))
    logits = torch.from_numpy(rng.normal(0, 4, (1, 2, *size)))
    expected = reference_pamr(image[None], logits)[0]
    np.testing.assert_allclose(pamr(image, logits[0]).numpy(), expected.numpy(), atol=1e-4)


def test_cpu_bands_give_the_result_of_one_band(monkeypatch: pytest.MonkeyPatch) -> None:
    """Working in bands of rows (to stay in the cache) changes nothing, bit for bit."""
    monkeypatch.setattr(refine, "USE_NATIVE", False)  # the bands are the torch version's
    rng = np.random.default_rng(1)
    image = torch.from_numpy(rng.random((3, 90, 61)))
    logits = torch.from_numpy(rng.normal(0, 4, (3, 90, 61))).float()
    monkeypatch.setattr(refine, "_BAND_BYTES", 1)  # 8 rows a band
    kernel = pamr_kernel(image)
    banded = kernel.propagate(logits)
    monkeypatch.setattr(refine, "_BAND_BYTES", 1 << 40)  # one band
    assert torch.equal(pamr_kernel(image).weights, kernel.weights)
    assert torch.equal(pamr_kernel(image).propagate(logits), banded)


class _CountingKernel:
    """A PAMR kernel that counts the rows it refines."""

    def __init__(self, image: torch.Tensor) -> None:
        self.kernel = pamr_kernel(image)
        self.rows = 0

    def propagate(self, values: torch.Tensor, steps: int = PAMR_STEPS) -> torch.Tensor:
        self.rows += values.shape[0]
        return self.kernel.propagate(values, steps)


def test_refined_rows_are_reused_only_for_the_same_image_and_name() -> None:
    from annotator.engine.protocol import upsample
    from annotator.engine.refine_cache import RefinedRows

    rng = np.random.default_rng(2)
    image = torch.from_numpy(rng.random((3, 48, 64)))
    logits = torch.from_numpy(rng.normal(0, 4, (3, 24, 32))).float()
    counting, cache = _CountingKernel(image), RefinedRows()
    first = cache.refine(7, counting, logits, (48, 64), ["a", "b", "c"])
    expected = pamr(image, upsample(logits, (48, 64)))
    assert torch.equal(first, expected) and counting.rows == 3
    again = cache.refine(7, counting, logits[[2, 0]], (48, 64), ["c", "a"])  # other order
    assert torch.equal(again, expected[[2, 0]]) and counting.rows == 3
    mixed = cache.refine(7, counting, logits[[1, 2]] + 1, (48, 64), ["d", "c"])
    assert counting.rows == 4
    assert torch.equal(mixed[1], expected[2])
    torch.testing.assert_close(mixed[0], expected[1] + 1, rtol=0, atol=1e-5)
    cache.refine(8, counting, logits, (48, 64), ["a", "b", "c"])  # another image
    assert counting.rows == 7
    cache.refine(7, counting, logits, (48, 64))  # unnamed (adapted) rows: always refined
    assert counting.rows == 10


def test_a_requery_reuses_refined_names_and_answers_the_same() -> None:
    """Asking again (known names, one new) gives what a fresh segmenter gives, refining only the
    new name; another image, or an adapter's logits, are refined anew."""
    from tests.unit.engine.helpers import painted_scene, tiny_segmenter

    image, _ = painted_scene(60, 80)
    warm, fresh = tiny_segmenter(refine="pamr"), tiny_segmenter(refine="pamr")
    warm.set_image(image)
    warm.predict(["cat", "dog; puppy", "sky"])
    assert len(warm._refined) == 4  # one row a name
    again = warm.predict(["sky", "grass", "cat"])
    assert len(warm._refined) == 5  # only "grass" was refined
    fresh.set_image(image)
    expected = fresh.predict(["sky", "grass", "cat"])
    np.testing.assert_array_equal(again.label_map, expected.label_map)
    np.testing.assert_allclose(again.confidence, expected.confidence, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        warm.query_logits(["cat", "dog"]), fresh.query_logits(["cat", "dog"]), rtol=0, atol=1e-5
    )
    warm.predict(["sky", "grass"], adapter=lambda view: view.zero_shot_logits[::-1].copy())
    assert len(warm._refined) == 5
    warm.set_image(image[::-1].copy())
    warm.predict(["sky", "grass", "cat"])
    assert len(warm._refined) == 8
