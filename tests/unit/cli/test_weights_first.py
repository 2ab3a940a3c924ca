"""Commands that need CLIP weights look for them (and download them) before importing torch:
missing weights are reported in about a second, with the same message and fixes as before."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import annotator.engine.segmenter as segmenter_module
from annotator.cli import main
from annotator.cli._weights_check import table_source
from annotator.engine import weights
from annotator.engine.testing import create_planted_segmenter
from annotator.project import Project
from tests.unit.cli.test_propose import PALETTE, scene

#: Runs ``annotator ARGS...`` in a fresh interpreter and says whether torch got imported.
_RUN = (
    "import sys\n"
    "from annotator.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('torch imported:', 'torch' in sys.modules)\n"
    "sys.exit(code)\n"
)


def _annotator(args: list[str], cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANNOTATOR_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", _RUN, *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project of one image with the classes cat and grass, never trained."""
    root = tmp_path / "proj"
    root.mkdir()
    Image.fromarray(scene()[0]).save(root / "a.png")
    with Project.open(root) as opened:
        opened.add_class("cat")
        opened.add_class("grass")
    return root


OFFLINE = (
    "The CLIP weights ViT-B-16:openai are not available: they are not in the cache and "
    "downloads are switched off (offline)."
)


@pytest.mark.parametrize(
    "command",
    [
        ["propose", "{proj}/a.png", "--classes", "cat", "--out", "{tmp}/out"],
        ["propose", "--project", "{proj}", "--out", "{tmp}/out"],
        ["propose", "--project", "{proj}", "--into-project"],
        ["memory", "{proj}", "--rebuild"],
    ],
    ids=["propose", "propose-project", "into-project", "memory-rebuild"],
)
def test_missing_weights_are_reported_without_loading_torch(
    command: list[str], project: Path, tmp_path: Path
) -> None:
    args = [part.format(proj=project, tmp=tmp_path) for part in command]
    result = _annotator(args, tmp_path / "cache")
    assert result.returncode == 1, result.stderr
    assert f"annotator {args[0]}: {OFFLINE}" in result.stderr
    assert f"Cache folder: {tmp_path / 'cache' / 'weights'}" in result.stderr
    assert "run 'annotator models download ViT-B-16:openai'" in result.stderr
    assert "or pass '--pretrained PATH' with a local weights file" in result.stderr
    assert "torch imported: False" in result.stdout


def test_a_missing_weights_file_is_reported_without_loading_torch(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    Image.fromarray(scene()[0]).save(image)
    gone = tmp_path / "gone.safetensors"
    args = ["propose", str(image), "--classes", "cat", "--pretrained", str(gone)]
    result = _annotator([*args, "--out", str(tmp_path / "out")], tmp_path / "cache")
    assert result.returncode == 1
    assert (
        f"annotator propose: The CLIP weights file {gone} for model ViT-B-16 cannot be used: the "
        "file does not exist."
    ) in result.stderr
    assert "torch imported: False" in result.stdout
    assert not (tmp_path / "out").exists()


class _Response(io.BytesIO):
    """What ``urllib.request.urlopen`` returns for a complete (200) download."""

    status = 200

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def test_weights_are_downloaded_into_the_cache_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for flag in ("HF_HUB_OFFLINE", "ANNOTATOR_OFFLINE"):
        monkeypatch.delenv(flag, raising=False)
    monkeypatch.setenv("ANNOTATOR_CACHE_DIR", str(tmp_path / "cache"))
    fetched: list[str] = []

    def urlopen(request: object, timeout: float = 0) -> _Response:
        fetched.append(request.full_url)  # type: ignore[attr-defined]
        return _Response(b"weights bytes")

    monkeypatch.setattr(weights.urllib.request, "urlopen", urlopen)
    source = table_source("ViT-B-16", "openai")
    cached = weights.cached_weights_folder(source) / source.hf_filenames[0]
    present_at_load: list[bool] = []

    def planted(config: object, **kw: object) -> object:
        present_at_load.append(cached.is_file())
        return create_planted_segmenter(PALETTE)

    monkeypatch.setattr(segmenter_module, "create_segmenter", planted)
    image = tmp_path / "a.png"
    Image.fromarray(scene()[0]).save(image)
    out = tmp_path / "out"
    assert main(["propose", str(image), "--classes", "cat, grass", "--out", str(out)]) == 0
    assert len(fetched) == 1 and fetched[0].startswith("https://huggingface.co/")
    assert present_at_load == [True]
    assert cached.read_bytes() == b"weights bytes"
    np.testing.assert_array_equal(np.asarray(Image.open(out / "a.png")), scene()[1])
    assert "wrote 1 label map" in capsys.readouterr().out
