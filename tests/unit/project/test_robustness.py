"""Never lose work: locking, crashes, files renamed behind our back, damaged label files."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from annotator.errors import JobCancelled, ProjectError, ProjectLockedError
from annotator.progress import run_job
from annotator.project import UNLABELED_U8, Project, _db, _scan, store

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


def _record_reads(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    """(hashed, headers read): file names the scan reads, recorded from now on."""
    hashed: list[str] = []
    headers: list[str] = []
    hash_file, read_size = _scan.hash_file, _scan.read_image_size
    monkeypatch.setattr(
        _scan, "hash_file", lambda path: hashed.append(Path(path).name) or hash_file(path)
    )
    monkeypatch.setattr(
        _scan, "read_image_size", lambda path: headers.append(Path(path).name) or read_size(path)
    )
    return hashed, headers


@pytest.fixture
def lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    """No header read at open, as for the images of a large folder beyond the first few."""
    monkeypatch.setattr(store, "_HEADERS_AT_OPEN", 0)


def test_opening_reads_no_file_unless_a_rename_is_possible(
    folder: Path, monkeypatch: pytest.MonkeyPatch, make_image
) -> None:
    for index in range(70):
        make_image(folder / f"z{index:02d}.png", seed=100 + index)
    hashed, headers = _record_reads(monkeypatch)
    with Project.open(folder) as project:
        records = project.list_images()
    # a first open is one directory walk, plus the headers of the first rows in path order
    first = ["a.png", "b.jpg", "c.png"] + [f"z{index:02d}.png" for index in range(61)]
    assert (hashed, headers) == ([], first)
    assert records[63].known_size == (32, 24) and records[64].known_size is None
    headers.clear()
    Project.open(folder).close()
    assert headers == []  # re-opening an unchanged folder reads no file
    make_image(folder / "new.png", seed=9)
    with Project.open(folder) as project:
        assert len(project.list_images()) == 74
        project.save_labels("a.png", np.full((24, 32), UNLABELED_U8, np.uint8))
    assert hashed == ["a.png"]  # labelled: hashed so that its labels can follow a rename
    hashed.clear()
    os.rename(folder / "a.png", folder / "renamed.png")
    make_image(folder / "bigger.png", width=64, seed=10)
    with Project.open(folder) as project:
        assert project.get_image("renamed.png").has_labels
        assert "a.png" not in [r.relpath for r in project.list_images(include_missing=True)]
    assert hashed == ["renamed.png"]  # the only new file as large as the vanished a.png


def test_a_renamed_file_that_was_never_labelled_is_not_hashed(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Project.open(folder).close()
    os.rename(folder / "a.png", folder / "renamed.png")
    hashed, _ = _record_reads(monkeypatch)
    with Project.open(folder) as project:
        assert project.get_image("renamed.png").status == "new"
    assert hashed == []  # nothing of a.png's was worth following


def test_changed_files_are_read_only_if_they_carry_work(
    folder: Path, monkeypatch: pytest.MonkeyPatch, make_image
) -> None:
    with Project.open(folder) as project:
        project.set_status("a.png", "reviewed")
    make_image(folder / "a.png", width=40, seed=5)  # another picture saved over it
    make_image(folder / "b.jpg", width=40, seed=6)
    expected = _scan.hash_file(folder / "a.png")
    hashed, _ = _record_reads(monkeypatch)
    with Project.open(folder) as project:
        assert project.get_image("b.jpg").size == (40, 24)
        record = project.get_image("a.png")
    assert hashed == ["a.png"]
    # the review was of the old picture: the new one starts over (see test_follow_picture.py)
    assert (record.content_hash, record.status) == (expected, "new")


@pytest.mark.parametrize("action", ["labels", "proposal", "status"])
def test_work_on_an_image_stores_its_content_hash(folder: Path, action: str) -> None:
    with Project.open(folder) as project:
        assert project.list_images()[0].content_hash == ""
        labels = np.full((24, 32), UNLABELED_U8, np.uint8)
        if action == "labels":
            project.save_labels("a.png", labels)
        elif action == "proposal":
            project.save_proposal("a.png", labels, 0.5)
        else:
            project.set_status("a.png", "reviewed")
        assert project.get_image("a.png").content_hash == _scan.hash_file(folder / "a.png")
    os.rename(folder / "a.png", folder / "moved.png")
    with Project.open(folder) as project:
        record = project.get_image("moved.png")
    assert record.status == {"labels": "edited", "proposal": "proposed"}.get(action, "reviewed")


def test_sizes_are_read_on_demand_and_stored(
    folder: Path, monkeypatch: pytest.MonkeyPatch, lazy: None
) -> None:
    with Project.open(folder) as project:
        records = project.list_images()
        assert all(r.known_size is None for r in records)
        _, headers = _record_reads(monkeypatch)
        assert (records[0].width, records[0].height) == (32, 24)
        assert project.image_size("a.png") == (32, 24)
        assert project.list_images()[0].known_size == (32, 24)
        assert headers == ["a.png"]  # read once, then stored
        late = project.list_images()[1]
    assert late.size == (32, 24)  # a record still knows how to get its size after close


def test_a_size_read_while_the_file_was_away_is_read_again(folder: Path, lazy: None) -> None:
    away = folder.parent / "a.png"
    with Project.open(folder) as project:
        os.rename(folder / "a.png", away)  # behind the open project's back
        assert project.image_size("a.png") == (0, 0)
        assert "does not exist" in project.get_image("a.png").error
    Project.open(folder).close()  # a.png is now missing
    os.rename(away, folder / "a.png")
    with Project.open(folder) as project:
        record = project.get_image("a.png")
    assert (record.size, record.error) == ((32, 24), None)


def test_the_size_job_flags_unreadable_files_in_the_list(folder: Path, lazy: None) -> None:
    (folder / "broken.png").write_bytes(b"not a png at all")
    with Project.open(folder) as project:
        assert project.list_images()[1].error is None  # not read yet
        assert run_job(project.read_image_sizes()) == 4
        records = {r.relpath: r for r in project.list_images()}
        assert run_job(project.read_image_sizes()) == 0
    assert records["broken.png"].error is not None and records["broken.png"].size == (0, 0)
    assert records["sub/c.png"].known_size == (32, 24) and records["sub/c.png"].error is None


def test_the_size_job_can_be_stopped(folder: Path, lazy: None) -> None:
    with Project.open(folder) as project:
        with pytest.raises(JobCancelled, match="read on demand"):
            run_job(project.read_image_sizes(should_stop=lambda: True))
        assert project.list_images()[0].known_size is None
        assert project.list_images()[0].size == (32, 24)


def test_a_schema_1_project_is_migrated_with_its_sizes(folder: Path, lazy: None) -> None:
    with Project.open(folder) as project:
        project.save_labels("a.png", np.full((24, 32), UNLABELED_U8, np.uint8))
    db = sqlite3.connect(folder / ".annotator" / "project.db")
    with db:  # rebuild the images table as schema 1 had it: sizes NOT NULL
        db.execute("ALTER TABLE images RENAME TO old")
        db.execute(_SCHEMA_1_IMAGES)
        db.execute("INSERT INTO images SELECT * FROM old WHERE relpath = 'a.png'")
        db.execute("DROP TABLE old")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.close()
    with Project.open(folder) as project:
        record = project.get_image("a.png")
        assert record.known_size == (32, 24) and record.has_labels
        assert project.list_images()[1].known_size is None  # b.jpg: new, not read yet
        assert project.list_images()[1].size == (32, 24)
        version = project._query("SELECT value FROM meta WHERE key = 'schema_version'")[0][0]
    assert version == str(_db.SCHEMA_VERSION)


_SCHEMA_1_IMAGES = """
CREATE TABLE images (
    id INTEGER PRIMARY KEY, relpath TEXT NOT NULL UNIQUE,
    width INTEGER NOT NULL DEFAULT 0, height INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL DEFAULT 0, mtime_ns INTEGER NOT NULL DEFAULT 0,
    content_hash TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT 'new', error TEXT,
    mean_confidence REAL, has_labels INTEGER NOT NULL DEFAULT 0,
    has_proposal INTEGER NOT NULL DEFAULT 0, missing INTEGER NOT NULL DEFAULT 0,
    added_at REAL NOT NULL, updated_at REAL NOT NULL
)
"""


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
        (record,) = [r for r in project.list_images() if r.relpath == "broken.png"]
        assert record.error is not None and "broken.png" in record.error  # marked at open
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
