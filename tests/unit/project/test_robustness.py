"""Never lose work: locking, crashes, files renamed behind our back, damaged label files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from annotator.errors import ProjectError, ProjectLockedError
from annotator.project import UNLABELED_U8, Project, _scan

_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from annotator.project import Project

    project = Project.open(sys.argv[1])
    ids = [project.add_class(n).id for n in ("road", "car")] if not project.list_classes() else [0, 1]
    step = 0
    while True:
        value = ids[step % 2]
        project.save_labels("a.png", np.full((24, 32), value, np.uint8))
        project.save_proposal("b.jpg", np.full((24, 32), value, np.uint8), 0.5)
        project.set_setting("step", step)
        if step == 0:
            print("ready", flush=True)  # one full save exists: any later kill must keep it
        step += 1
    """
)


def _start_child(folder: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return child


def test_second_writer_is_refused_with_the_holder_named(folder: Path) -> None:
    child = _start_child(folder)
    try:
        with pytest.raises(ProjectLockedError, match=f"process {child.pid} on .*read-only"):
            Project.open(folder)
        with Project.open(folder, read_only=True) as viewer:
            assert len(viewer.list_images()) == 3
            with pytest.raises(ProjectError, match="read-only"):
                viewer.add_class("tree")
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("delay", [0.05, 0.17, 0.31])
def test_killed_mid_save_leaves_a_readable_store(folder: Path, delay: float) -> None:
    child = _start_child(folder)
    time.sleep(delay)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with Project.open(folder) as project:  # the dead writer's lock is not in the way
        labels, proposal = project.load_labels("a.png"), project.load_proposal("b.jpg")
        assert labels is not None and len(np.unique(labels)) == 1
        assert int(labels[0, 0]) in (0, 1)
        assert proposal is not None and int(proposal[0, 0]) in (0, 1)
        assert project.list_problems() == []
        assert isinstance(project.get_setting("step"), int)
    leftovers = list((folder / ".annotator").rglob("*.tmp"))
    assert leftovers == []


_MERGING_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from annotator.project import Project

    project = Project.open(sys.argv[1])
    keep = project.add_class("keep")
    step = 0
    while True:
        extra = project.add_class(f"extra{step}")
        labels = np.full((24, 32), keep.id, np.uint8)
        labels[:12] = extra.id
        for relpath in ("a.png", "b.jpg", "sub/c.png"):
            project.save_labels(relpath, labels)
        if step % 2:
            project.merge_classes(extra.id, keep.id)
        else:
            project.delete_class(extra.id)
        if step == 0:
            print("ready", flush=True)
        step += 1
    """
)


@pytest.mark.parametrize("delay", [0.1, 0.23])
def test_killed_mid_merge_or_delete_leaves_only_known_classes(folder: Path, delay: float) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _MERGING_CHILD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    time.sleep(delay)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with Project.open(folder) as project:
        known = {c.id for c in project.list_classes()} | {UNLABELED_U8}
        keep = project.find_class("keep").id
        for relpath in ("a.png", "b.jpg", "sub/c.png"):
            labels = project.load_labels(relpath)
            assert set(np.unique(labels)) <= known
            assert (labels[12:] == keep).all()
            # merged (keep), deleted (unlabeled) or not yet retired (a live extra class)
            assert len(np.unique(labels[:12])) == 1


def test_renamed_and_moved_files_keep_their_labels(folder: Path) -> None:
    with Project.open(folder) as project:
        road = project.add_class("road")
        labels = np.full((24, 32), UNLABELED_U8, np.uint8)
        labels[:5] = road.id
        project.save_labels("a.png", labels)
        project.save_proposal("sub/c.png", labels, 0.4)
    (folder / "deeper").mkdir()
    os.rename(folder / "a.png", folder / "deeper" / "renamed.png")
    os.rename(folder / "sub" / "c.png", folder / "c_moved.png")
    with Project.open(folder) as project:
        assert [r.relpath for r in project.list_images()] == [
            "b.jpg",
            "c_moved.png",
            "deeper/renamed.png",
        ]
        assert np.array_equal(project.load_labels("deeper/renamed.png"), labels)
        assert project.get_image("deeper/renamed.png").status == "edited"
        assert np.array_equal(project.load_proposal("c_moved.png"), labels)


def test_removed_images_keep_labels_until_they_return(folder: Path) -> None:
    with Project.open(folder) as project:
        road = project.add_class("road")
        project.save_labels("a.png", np.full((24, 32), road.id, np.uint8))
    moved_away = folder.parent / "a.png"
    os.rename(folder / "a.png", moved_away)
    with Project.open(folder) as project:
        assert "a.png" not in [r.relpath for r in project.list_images()]
        assert "a.png" in [r.relpath for r in project.list_images(include_missing=True)]
    os.rename(moved_away, folder / "a.png")
    with Project.open(folder) as project:
        assert project.load_labels("a.png")[0, 0] == road.id


def test_reopening_does_not_rehash_unchanged_files(
    folder: Path, monkeypatch: pytest.MonkeyPatch, make_image
) -> None:
    Project.open(folder).close()
    hashed: list[Path] = []
    original = _scan.hash_file
    monkeypatch.setattr(_scan, "hash_file", lambda path: hashed.append(path) or original(path))
    make_image(folder / "new.png", seed=9)
    with Project.open(folder) as project:
        assert len(project.list_images()) == 4
    assert hashed == [folder / "new.png"]


def test_scanning_never_decodes_pixels(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image, ImageFile

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (30, 20)).save(folder / "rotated.png", exif=exif)
    Image.new("RGB", (30, 20)).save(folder / "rotated.webp", exif=exif)
    Image.new("RGB", (30, 20)).save(folder / "rotated.jpg", exif=exif)
    Image.new("RGB", (30, 20)).save(folder / "plain.tif")
    decoded: list[object] = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self))
    with Project.open(folder) as project:
        sizes = {r.relpath: (r.width, r.height) for r in project.list_images()}
    assert decoded == []  # recorded, not raised: a swallowed exception must not hide a decode
    assert sizes["a.png"] == (32, 24) and sizes["plain.tif"] == (30, 20)
    assert sizes["rotated.png"] == sizes["rotated.webp"] == sizes["rotated.jpg"] == (20, 30)


def test_a_damaged_label_file_is_quarantined_and_reported(folder: Path) -> None:
    with Project.open(folder) as project:
        road = project.add_class("road")
        project.save_labels("a.png", np.full((24, 32), road.id, np.uint8))
        project.save_labels("b.jpg", np.full((24, 32), road.id, np.uint8))
    label_file = folder / ".annotator" / "labels" / "a.png.png"
    label_file.write_bytes(label_file.read_bytes()[:40])
    with Project.open(folder) as project:
        assert project.load_labels("a.png") is None
        assert project.load_labels("b.jpg") is not None
        (problem,) = project.list_problems()
        assert problem.relpath == "a.png" and "is damaged" in problem.message
        assert "moved to" in problem.message
        assert not project.get_image("a.png").has_labels
    assert not label_file.exists()
    assert len(list((folder / ".annotator" / "quarantine").rglob("a.png.png"))) == 1


def test_unreadable_images_are_listed_with_their_error(folder: Path) -> None:
    (folder / "broken.png").write_bytes(b"not a png at all")
    with Project.open(folder) as project:
        record = project.get_image("broken.png")
        assert record.error is not None and "broken.png" in record.error
        from annotator.errors import ImageReadError

        with pytest.raises(ImageReadError, match="not an image file"):
            project.load_image("broken.png")
        assert project.load_image("a.png").shape == (24, 32, 3)


def test_read_only_needs_an_existing_project(folder: Path) -> None:
    with pytest.raises(ProjectError, match="open it for editing once"):
        Project.open(folder, read_only=True)


def test_content_hash_of_large_files_reads_samples_but_sees_changes(tmp_path: Path) -> None:
    data = bytearray(np.random.default_rng(0).integers(0, 256, 5 << 20, dtype=np.uint8).tobytes())
    (tmp_path / "one.tif").write_bytes(data)
    (tmp_path / "two.tif").write_bytes(data)
    assert _scan.hash_file(tmp_path / "one.tif") == _scan.hash_file(tmp_path / "two.tif")
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "two.tif").write_bytes(data)
    assert _scan.hash_file(tmp_path / "one.tif") != _scan.hash_file(tmp_path / "two.tif")
