"""Resuming ``propose`` output folders: same settings skip finished images, other settings redo
everything, killed runs leave whole files only (:mod:`annotator.engine.resume`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import annotator.engine.batch as batch
from annotator.engine.batch import collect_inputs, propose_files, save_label_png
from annotator.engine.resume import FINGERPRINT_FILE, JOURNAL_FILE, png_is_complete
from annotator.engine.segmenter import create_segmenter
from annotator.errors import JobCancelled
from annotator.progress import run_job
from tests.unit.cluster.odd_images import CLASSES, folder_bytes, odd_folder, tiny_config


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("resume")
    images = odd_folder(base / "images")
    segmenter = create_segmenter(tiny_config())
    reference = base / "reference"
    run_job(propose_files(segmenter, collect_inputs([images]), CLASSES, reference))
    return {"images": images, "segmenter": segmenter, "reference": reference}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the images actually proposed (not skipped)."""
    seen: list[str] = []
    original = batch._propose_one

    def counting(segmenter, path, classes):  # noqa: ANN001, ANN202
        seen.append(path.name)
        return original(segmenter, path, classes)

    monkeypatch.setattr(batch, "_propose_one", counting)
    return seen


def _run(world: dict, out: Path, classes: list[str] = CLASSES, **kw: object) -> batch.ProposeReport:
    items = collect_inputs([world["images"]])
    return run_job(propose_files(world["segmenter"], items, classes, out, **kw))


def test_a_killed_run_resumes_where_it_stopped(world: dict, tmp_path: Path, calls: list) -> None:
    out, steps = tmp_path / "out", iter(range(100))
    with pytest.raises(JobCancelled):
        _run(world, out, should_stop=lambda: next(steps) >= 5)  # killed after 5 of 12 inputs
    assert not list(out.rglob("*.part"))  # no half-written file left behind
    done = {p.name for p in out.rglob("*.png")}
    calls.clear()
    report = _run(world, out)
    assert report.skipped == len(done) and not report.restarted
    assert len(calls) == 12 - len(done)  # finished images are not proposed again
    assert folder_bytes(out) == folder_bytes(world["reference"])


def test_the_same_settings_skip_everything_but_unreadable_files(
    world: dict, tmp_path: Path, calls: list
) -> None:
    out = tmp_path / "out"
    _run(world, out)
    calls.clear()
    report = _run(world, out)
    assert report.skipped == 9 and report.written == []
    assert sorted(calls) == ["empty.png", "text.png", "truncated.jpg"]  # tried again
    assert len(report.failed) == 3


def test_other_settings_propose_everything_again(world: dict, tmp_path: Path, calls: list) -> None:
    out = tmp_path / "out"
    _run(world, out)
    first = json.loads((out / FINGERPRINT_FILE).read_text())["fingerprint"]
    calls.clear()
    report = _run(world, out, classes=["cat", "dog"])
    assert report.restarted and report.skipped == 0 and len(report.written) == 9
    assert len(calls) == 12
    assert json.loads((out / FINGERPRINT_FILE).read_text())["fingerprint"] != first
    other = create_segmenter(tiny_config().__class__(**{**vars(tiny_config()), "short_side": 48}))
    items = collect_inputs([world["images"]])
    changed = run_job(propose_files(other, items, ["cat", "dog"], out))
    assert changed.restarted and changed.skipped == 0


def test_a_name_freed_by_a_broken_file_stays_with_its_owner(
    world: dict, tmp_path: Path, calls: list
) -> None:
    """a.jpg unreadable: a.png takes ``a.png``; on a rerun a.jpg (still broken) must not be
    mistaken for done because ``a.png`` exists."""
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.jpg").write_bytes(b"")
    (images / "a.png").write_bytes((world["images"] / "a.png").read_bytes())
    items, out = collect_inputs([images]), tmp_path / "out"
    run_job(propose_files(world["segmenter"], items, CLASSES, out))
    calls.clear()
    report = run_job(propose_files(world["segmenter"], items, CLASSES, out))
    assert [p.name for p, _ in report.failed] == ["a.jpg"] and report.skipped == 1
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png"]


def test_a_partial_journal_line_is_ignored(world: dict, tmp_path: Path, calls: list) -> None:
    out = tmp_path / "out"
    _run(world, out)
    journal = (out / JOURNAL_FILE).read_text().splitlines(keepends=True)
    (out / JOURNAL_FILE).write_text("".join(journal[:-1]) + journal[-1][:10])  # killed mid-line
    calls.clear()
    report = _run(world, out)
    assert report.skipped == 8 and len(report.written) == 1
    assert folder_bytes(out) == folder_bytes(world["reference"])


def test_resume_off_writes_everything(world: dict, tmp_path: Path, calls: list) -> None:
    out = tmp_path / "out"
    _run(world, out)
    calls.clear()
    report = _run(world, out, resume=False)
    assert report.skipped == 0 and len(calls) == 12


def test_label_pngs_are_written_whole(tmp_path: Path) -> None:
    import numpy as np

    target = tmp_path / "x" / "labels.png"
    save_label_png(target, np.zeros((4, 5), np.uint8), [(1, 2, 3)])
    assert png_is_complete(target)
    whole = target.read_bytes()
    target.write_bytes(whole[:-3])
    assert not png_is_complete(target)
    assert not png_is_complete(tmp_path / "missing.png")
    assert [p.name for p in target.parent.iterdir()] == ["labels.png"]
