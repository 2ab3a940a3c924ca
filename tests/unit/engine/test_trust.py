"""Weight files never run code: TorchScript archives load only with a published checksum; the
activation (QuickGELU or GELU) of a local file follows its config, checksum or the user."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from annotator.cli import main
from annotator.engine import EngineConfig, create_segmenter, trust
from annotator.engine.testing import TINY_MODEL
from annotator.engine.trust import PublishedFile, UntrustedWeightsError
from annotator.engine.weights import WeightsWarning, resolve_weights


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    import open_clip

    torch.manual_seed(0)
    return open_clip.create_model(TINY_MODEL, pretrained=None).eval()


@pytest.fixture
def archive(tiny_model: torch.nn.Module, tmp_path: Path) -> Path:
    path = tmp_path / "ViT-B-16.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(tiny_model).save(str(path))
    return path


@pytest.fixture
def no_jit(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every call of torch.jit.load (which would run the archive's code)."""
    calls: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        calls.append(str(args[0]))
        raise AssertionError("torch.jit.load was called")

    monkeypatch.setattr(torch.jit, "load", refuse)
    return calls


def _features(pretrained: str, **settings: object) -> np.ndarray:
    config = EngineConfig(model=TINY_MODEL, pretrained=pretrained, short_side=64, **settings)
    image = np.full((32, 48, 3), 90, np.uint8)
    image[:, 20:] = 200
    return create_segmenter(config).image_features(image)


def test_unpublished_torchscript_is_refused_without_running_it(archive: Path, no_jit) -> None:  # noqa: ANN001
    with pytest.raises(UntrustedWeightsError) as caught:
        create_segmenter(EngineConfig(model=TINY_MODEL, pretrained=str(archive)))
    message = str(caught.value)
    assert "runs the code it contains" in message and "matches none of the published" in message
    assert f"annotator models convert --trust {archive}" in message
    assert no_jit == []


def test_train_with_a_stored_torchscript_pretrained_refuses_it(
    archive: Path, no_jit: list[str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from annotator.project import Project
    from tests.unit.training.conftest import build_project

    folder = tmp_path / "project"
    build_project(folder, count=4, reviewed=4, size=32).close()
    with Project.open(folder) as project:  # what a project handed over by someone else holds
        project.set_setting("engine", {"model": TINY_MODEL, "pretrained": str(archive)})
    main(["train", str(folder), "--rounds", "1", "--steps", "2"])
    assert "runs the code it contains" in capsys.readouterr().err
    assert no_jit == []


def test_published_archive_loads_with_quick_gelu(
    archive: Path, tiny_model: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = trust.file_sha256(archive)
    published = {digest: PublishedFile("ViT-B-16", "openai", True)}
    monkeypatch.setattr(trust, "published_checksums", lambda: published)
    resolved = resolve_weights(TINY_MODEL, str(archive))
    assert resolved.quick_gelu and "checksum" in resolved.activation.reason
    plain = tmp_path / "plain.bin"
    torch.save(tiny_model.state_dict(), plain)
    np.testing.assert_allclose(
        _features(str(archive)), _features(str(plain), quick_gelu=True), atol=1e-5
    )


def test_an_archive_swapped_after_the_check_is_refused(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published = {trust.file_sha256(archive): PublishedFile("ViT-B-16", "openai", True)}
    monkeypatch.setattr(trust, "published_checksums", lambda: published)
    from annotator.engine import loading

    original = loading._load_weights

    def swap_then_load(model: torch.nn.Module, path: Path, name: str) -> None:
        path.write_bytes(path.read_bytes() + b"\0")  # the archive changes between check and load
        original(model, path, name)

    monkeypatch.setattr(loading, "_load_weights", swap_then_load)
    with pytest.raises(UntrustedWeightsError):
        create_segmenter(EngineConfig(model=TINY_MODEL, pretrained=str(archive)))


def test_convert_then_load_as_safetensors(
    archive: Path, tiny_model: torch.nn.Module, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "converted.safetensors"
    assert main(["models", "convert", str(archive), str(output)]) == 2
    assert "--trust" in capsys.readouterr().err and not output.exists()
    assert main(["models", "convert", "--trust", str(archive), str(output)]) == 0
    resolved = resolve_weights(TINY_MODEL, str(output))
    assert resolved.quick_gelu and "metadata" in resolved.activation.reason  # OpenAI archive
    plain = tmp_path / "plain.bin"
    torch.save(tiny_model.state_dict(), plain)
    np.testing.assert_allclose(
        _features(str(output)), _features(str(plain), quick_gelu=True), atol=1e-5
    )


def _safetensors(model: torch.nn.Module, path: Path) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


@pytest.mark.parametrize("quick", [True, False])
def test_open_clip_config_beside_the_file_decides(
    tiny_model: torch.nn.Module, tmp_path: Path, quick: bool
) -> None:
    path = _safetensors(tiny_model, tmp_path / "open_clip_model.safetensors")
    config = {"model_cfg": {"embed_dim": 32, "quick_gelu": quick}}
    (tmp_path / "open_clip_config.json").write_text(json.dumps(config))
    resolved = resolve_weights(TINY_MODEL, str(path))
    assert resolved.quick_gelu is quick and "open_clip_config.json" in resolved.activation.reason
    assert resolve_weights(TINY_MODEL, str(path), quick_gelu=not quick).quick_gelu is not quick


def test_openai_named_file_with_gelu_warns(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    path = _safetensors(tiny_model, tmp_path / "clip-vit-b-16-openai.safetensors")
    with pytest.warns(WeightsWarning, match="OpenAI weights need QuickGELU"):
        assert not resolve_weights(TINY_MODEL, str(path)).quick_gelu
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_weights(TINY_MODEL, str(path), quick_gelu=True).quick_gelu


def test_quick_gelu_flag_changes_the_features(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    path = str(_safetensors(tiny_model, tmp_path / "tiny.safetensors"))
    assert not np.allclose(_features(path, quick_gelu=True), _features(path, quick_gelu=False))


def test_models_info_says_which_activation(
    tiny_model: torch.nn.Module, archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = _safetensors(tiny_model, tmp_path / "openai-weights.safetensors")
    assert main(["models", "info", "--pretrained", str(path), "--model", TINY_MODEL]) == 0
    out = capsys.readouterr().out
    assert "activation: GELU" in out and "warning:" in out and "QuickGELU" in out
    assert main(["models", "info", "--pretrained", str(path), "--quick-gelu"]) == 0
    assert "activation: QuickGELU (chosen with --quick-gelu" in capsys.readouterr().out
    assert main(["models", "info", "--pretrained", str(archive)]) == 1
    assert "loads: no" in capsys.readouterr().out


def test_published_table_holds_openai_checksums() -> None:
    table = trust.published_checksums()
    vit_b16 = [f for f in table.values() if (f.model, f.tag) == ("ViT-B-16", "openai")]
    assert vit_b16 == [PublishedFile("ViT-B-16", "openai", True)]
    assert "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f" in table
