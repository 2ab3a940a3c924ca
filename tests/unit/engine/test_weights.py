"""Weights: missing or broken weights give a message with the fixes; local files load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from annotator.engine import EngineConfig, create_segmenter
from annotator.engine.testing import TINY_MODEL
from annotator.engine.weights import (
    find_weights,
    partial_downloads,
    resolve_weights,
    weights_dir,
    weights_source,
)
from annotator.errors import WeightsUnavailableError


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    import open_clip

    torch.manual_seed(0)
    return open_clip.create_model(TINY_MODEL, pretrained=None).eval()


def features_with(pretrained: str, image: np.ndarray) -> np.ndarray:
    config = EngineConfig(model=TINY_MODEL, pretrained=pretrained, short_side=64)
    return create_segmenter(config).image_features(image)


def reference_features(model: torch.nn.Module, tmp_path: Path, image: np.ndarray) -> np.ndarray:
    path = tmp_path / "reference.bin"
    torch.save(model.state_dict(), path)
    return features_with(str(path), image)


def test_missing_tag_names_model_tag_cache_and_fixes() -> None:
    with pytest.raises(WeightsUnavailableError) as caught:
        create_segmenter(EngineConfig(model="ViT-B-16", pretrained="openai"))
    message = str(caught.value)
    assert "ViT-B-16:openai" in message
    assert str(weights_dir()) in message
    assert "annotator models download ViT-B-16:openai" in message
    assert "--pretrained PATH" in message


def test_missing_weights_can_be_allowed() -> None:
    segmenter = create_segmenter(EngineConfig(pretrained="openai"), allow_missing_weights=True)
    assert not segmenter.available
    assert isinstance(segmenter.weights_error, WeightsUnavailableError)
    segmenter.set_image(np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(WeightsUnavailableError):
        segmenter.predict(["cat"])


def test_partial_download_never_counts_as_present(tmp_path: Path) -> None:
    source = weights_source("ViT-B-16", "openai")
    folder = weights_dir(tmp_path) / "ViT-B-16" / "openai"
    folder.mkdir(parents=True)
    (folder / (source.hf_filenames[0] + ".part")).write_bytes(b"\0" * 1000)
    assert find_weights(source, tmp_path) is None
    assert len(partial_downloads(tmp_path)) == 1
    with pytest.raises(WeightsUnavailableError, match="not in the cache"):
        resolve_weights("ViT-B-16", "openai", cache_dir=tmp_path)


def test_cached_weights_are_found(tmp_path: Path) -> None:
    source = weights_source("ViT-B-16", "openai")
    folder = weights_dir(tmp_path) / "ViT-B-16" / "openai"
    folder.mkdir(parents=True)
    (folder / source.hf_filenames[0]).write_bytes(b"weights")
    resolved = resolve_weights("ViT-B-16", "openai", cache_dir=tmp_path)
    assert resolved.path == folder / source.hf_filenames[0]
    assert resolved.quick_gelu  # OpenAI weights were trained with QuickGELU


def test_unknown_tag_lists_known_tags() -> None:
    with pytest.raises(ValueError, match="openai"):
        create_segmenter(EngineConfig(model="ViT-B-16", pretrained="no-such-tag"))


def test_unknown_model_suggests_names() -> None:
    with pytest.raises(ValueError, match="ViT-B-16"):
        create_segmenter(EngineConfig(model="ViT-B-61", pretrained=None))


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_local_weight_files_load(tiny_model, tmp_path: Path, suffix: str) -> None:  # noqa: ANN001
    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), np.uint8)
    path = tmp_path / f"tiny{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in tiny_model.state_dict().items()}, str(path))
    else:
        torch.save({"state_dict": tiny_model.state_dict()}, path)
    expected = reference_features(tiny_model, tmp_path, image)
    np.testing.assert_allclose(features_with(str(path), image), expected, atol=1e-5)


@pytest.mark.parametrize("content", [b"", b"garbage" * 100, b"PK\x03\x04broken zip"])
def test_corrupt_files_raise_weights_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.safetensors"
    path.write_bytes(content)
    with pytest.raises(WeightsUnavailableError, match="damaged") as caught:
        create_segmenter(EngineConfig(model=TINY_MODEL, pretrained=str(path)))
    assert str(path) in str(caught.value)


def test_truncated_file_raises_weights_error(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    full = tmp_path / "full.bin"
    torch.save(tiny_model.state_dict(), full)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(WeightsUnavailableError, match="delete it and download it again"):
        create_segmenter(EngineConfig(model=TINY_MODEL, pretrained=str(cut)))


def test_wrong_architecture_file_raises_weights_error(tmp_path: Path) -> None:
    path = tmp_path / "other.bin"
    torch.save({"visual.conv1.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(WeightsUnavailableError, match="not annotator-tiny-vit weights"):
        create_segmenter(EngineConfig(model=TINY_MODEL, pretrained=str(path)))


def test_missing_file_is_reported() -> None:
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        create_segmenter(EngineConfig(model=TINY_MODEL, pretrained="/no/such/weights.pt"))


@pytest.mark.network
def test_download_and_label_with_real_weights(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """Needs internet: downloads ViT-B-32 OpenAI weights (~350 MB) into a fresh cache."""
    monkeypatch.setenv("ANNOTATOR_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    seen: list[int] = []
    config = EngineConfig(model="ViT-B-32", pretrained="openai", short_side=224)
    segmenter = create_segmenter(config, progress=lambda step: seen.append(step.done))
    assert seen and not partial_downloads()
    image = np.zeros((224, 448, 3), np.uint8)
    image[:, :224] = (40, 160, 40)  # green left half
    image[:, 224:] = (90, 150, 235)  # sky-blue right half
    segmenter.set_image(image)
    labels = segmenter.predict(["grass", "sky"]).label_map
    assert (labels[:, :200] == 0).mean() > 0.8 and (labels[:, 248:] == 1).mean() > 0.8


def test_random_init_is_the_same_model_in_every_process() -> None:
    """Without weights, two segmenters (e.g. 'annotator train' then 'annotator eval') agree."""
    config = EngineConfig(model=TINY_MODEL, pretrained=None, short_side=64)
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    first = create_segmenter(config).encode_text(["cat", "road"])
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    second = create_segmenter(config).encode_text(["cat", "road"])
    # Same weights; only float rounding may differ (1 or 2 threads). Another random init
    # differs by about 0.1.
    np.testing.assert_allclose(first, second, atol=1e-5)


def test_a_failed_download_without_network_says_the_reason_once(
    tmp_path: Path, monkeypatch
) -> None:  # noqa: ANN001,E501
    """No network: every source fails the same way; the user reads that reason once, not three
    URLs each repeating it; nothing is left in the cache."""
    import urllib.error

    from annotator.engine import weights

    def unreachable(url: str, *_args: object) -> Path:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("ANNOTATOR_OFFLINE", raising=False)
    monkeypatch.setattr(weights, "_fetch", unreachable)
    source = weights_source("ViT-B-16", "openai")
    with pytest.raises(WeightsUnavailableError) as raised:
        weights.download_weights(source, tmp_path)
    message = str(raised.value)
    assert message.count("Name or service not known") == 1
    assert "tried huggingface.co, openaipublic.azureedge.net" in message
    assert "annotator models download ViT-B-16:openai" in message
    assert not any(tmp_path.rglob("*.part"))


def test_different_download_failures_are_each_named() -> None:
    from annotator.engine.weights import describe_failures

    text = describe_failures(
        [("https://a.example/w.bin", "HTTP 404"), ("https://b.example/w.pt", "timed out")]
    )
    assert text == (
        "the download failed (https://a.example/w.bin: HTTP 404; https://b.example/w.pt: timed out)"
    )
