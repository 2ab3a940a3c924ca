"""A killed ``annotator propose`` can leave hidden ``.NAME.PID.part`` files (PNGs are written
through them); the next run into the same folder removes those of processes that are gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from annotator.cli import main
from tests.unit.cli.test_propose import plant, scene


def _dead_pid() -> int:
    """The PID of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_rerun_removes_the_part_files_a_killed_run_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    plant(monkeypatch, tmp_path)
    images, out = tmp_path / "images", tmp_path / "out"
    (images / "nested").mkdir(parents=True)
    for name in ("a.png", "nested/b.png"):
        Image.fromarray(scene()[0]).save(images / name)
    args = ["propose", str(images), "--classes", "cat, grass", "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    dead, alive = _dead_pid(), os.getppid()  # a killed run's, and a live process's (writing now)
    stale = [out / f".a.png.{dead}.part", out / "nested" / f".b.png.{dead}.part",
             out / f".classes.json.{dead}.part", out / f".a.png.{os.getpid()}.part"]  # fmt: skip
    kept = [out / f".b.png.{alive}.part", out / ".my-notes.part", out / "draft.part"]
    for path in stale + kept:
        path.write_bytes(b"half a PNG")
    assert main(args) == 0
    captured = capsys.readouterr()
    assert [p.name for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept)
    assert captured.out == f"wrote 0 label maps and classes.json to {out}\n"
    assert "skipped 2 images already proposed" in captured.err
    assert ".part" not in captured.out + captured.err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "a.png", "nested/b.png",
    ]  # fmt: skip
