"""``--preset`` on the engine commands and ``annotator models presets``."""

from __future__ import annotations

import argparse

import pytest

from annotator.cli import main
from annotator.cli._engine_flags import add_engine_arguments, engine_config_from_args


def _config(*flags: str):  # noqa: ANN202
    parser = argparse.ArgumentParser()
    add_engine_arguments(parser)
    return engine_config_from_args(parser.parse_args(list(flags)))


def test_default_is_the_published_naclip_protocol() -> None:
    config = _config()
    assert config.preset == "naclip-stuff" and config.head == "naclip"
    assert (config.short_side, config.window, config.stride) == (336, 224, 112)
    assert config.refine == "pamr" and len(config.templates) == 80 and config.synonyms == "max"


def test_flags_override_the_preset() -> None:
    config = _config("--preset", "clearclip", "--templates", "single", "--refine", "pamr",
                     "--logit-scale", "45", "--no-quick-gelu")  # fmt: skip
    assert (config.head, config.window, config.short_side) == ("clearclip", 448, 448)
    assert config.templates == ("a photo of a {}.",) and config.refine == "pamr"
    assert config.logit_scale == 45.0 and config.quick_gelu is False
    assert _config("--preset", "naclip-voc20", "--refine", "none").refine is None


def test_models_presets_lists_each_with_its_published_miou(capsys: pytest.CaptureFixture) -> None:
    assert main(["models", "presets"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    published = {
        line.split(":")[0].split()[0]: lines[index + 1]
        for index, line in enumerate(lines)
        if not line.startswith(" ")
    }
    for name, figure in [("naclip-voc20", "83.0"), ("naclip-stuff", "25.7"), ("sclip-voc", "81.5"),
                         ("sclip-stuff", "22.8"), ("clearclip", "80.9"), ("maskclip", "49.5")]:  # fmt: skip
        assert "published" in published[name] and figure in published[name]
    assert set(published) == {"naclip-voc20", "naclip-stuff", "sclip-voc", "sclip-stuff",
                              "clearclip", "maskclip", "fast"}  # fmt: skip
    assert "naclip-stuff  (default)" in out and "logit_scale=50.0" in out


def test_unknown_preset_is_a_clear_error(tmp_path, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    from PIL import Image

    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    code = main(["propose", str(image), "--classes", "cat", "--preset", "nacl",
                 "--out", str(tmp_path / "out")])  # fmt: skip
    assert code != 0
    assert "Unknown preset 'nacl'" in capsys.readouterr().err
