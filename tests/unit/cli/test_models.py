"""``annotator models``: where the cache is, what is present, offline downloads refused."""

from __future__ import annotations

import re

from annotator.cli import main
from annotator.engine.weights import weights_dir, weights_source


def test_info_shows_cache_and_files(capsys) -> None:  # noqa: ANN001
    source = weights_source("ViT-B-32", "openai")
    folder = weights_dir() / "ViT-B-32" / "openai"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / source.hf_filenames[0]).write_bytes(b"x" * 2048)
    (folder / "partial.bin.part").write_bytes(b"x" * 10)
    try:
        assert main(["models", "info"]) == 0
        out = capsys.readouterr().out
        assert str(weights_dir()) in out
        assert "ViT-B-32/openai/open_clip_model.safetensors  2.0 KB" in out
        assert "unfinished" in out
        assert main(["models", "list", "--present"]) == 0
        listed = capsys.readouterr().out
        assert re.search(r"ViT-B-32 +openai +2\.0 KB +yes", listed)
        assert "laion" not in listed
    finally:
        for path in folder.iterdir():
            path.unlink()


def test_download_offline_explains_the_fix(capsys) -> None:  # noqa: ANN001
    assert main(["models", "download", "ViT-B-16:openai"]) == 1
    err = capsys.readouterr().err
    assert "switched off" in err and "--pretrained PATH" in err


def test_download_unknown_model(capsys) -> None:  # noqa: ANN001
    assert main(["models", "download", "ViT-Q-99"]) == 1
    assert "Unknown model" in capsys.readouterr().err
