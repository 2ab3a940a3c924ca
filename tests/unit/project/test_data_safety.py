"""No silent label loss: the 8-bit -> 16-bit switch, a lost database or WAL, damaged or full
disks, newer projects, file permissions, exports inside the project (issue 8)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotator.cli import main
from annotator.errors import (
    DiskFullError,
    LabelFileError,
    ProjectDamagedError,
    ProjectReadOnlyError,
    ProjectVersionError,
)
from annotator.progress import run_job
from annotator.project import UNLABELED_U8, UNLABELED_U16, Project, _db, _labelfile
from annotator.project import _base as base

H, W = 24, 32


def _half(class_id: int, unlabeled: int = UNLABELED_U8, dtype: type = np.uint8) -> np.ndarray:
    """Top half ``class_id``, bottom half not labelled."""
    labels = np.full((H, W), unlabeled, dtype)
    labels[: H // 2] = class_id
    return labels


# ----------------------------------------------------------------------------- crossing id 255


def add_classes_quickly(project: Project, names: list[str]) -> None:
    """Add classes in one transaction (one fsync rather than one per class: test set-up)."""
    from annotator.project._classes import _insert_class

    with project._transaction() as conn:
        for name in names:
            next_id = int(
                conn.execute("SELECT value FROM meta WHERE key='next_class_id'").fetchone()[0]
            )
            _insert_class(conn, next_id, name, [], (1, 2, 3), False)
    project._luts.clear()


def test_unlabelled_stays_unlabelled_when_class_255_appears(folder: Path) -> None:
    with Project.open(folder) as project:
        ids = [project.add_class(n).id for n in ("road", "car", "tree")]
        project.save_labels("a.png", _half(ids[1]))
        project.save_proposal("b.jpg", _half(ids[2]), 0.5)
        add_classes_quickly(project, [f"extra{i}" for i in range(3, 255)])
        assert project.label_dtype == np.uint8
        assert np.array_equal(project.load_labels("a.png"), _half(1))
        assert project.add_class("the 255th").id == 255
        assert project.label_dtype == np.uint16 and project.get_class(255)
        expected = _half(1, UNLABELED_U16, np.uint16)
        assert np.array_equal(project.load_labels("a.png"), expected)
        assert np.array_equal(project.load_proposal("b.jpg"), _half(2, UNLABELED_U16, np.uint16))
        project.merge_classes(255, ids[0])  # rewrites the maps that hold class 255
        project.add_class("after the switch")
        project.save_labels("sub/c.png", _half(256, UNLABELED_U16, np.uint16))
    with Project.open(folder) as project:
        assert np.array_equal(project.load_labels("a.png"), expected)
        assert np.array_equal(
            project.load_labels("sub/c.png"), _half(256, UNLABELED_U16, np.uint16)
        )


def test_coco_import_of_300_categories_keeps_unlabelled_pixels(
    folder: Path, tmp_path: Path
) -> None:
    from annotator.formats import import_into_project

    with Project.open(folder) as project:
        road = project.add_class("road")
        project.save_labels("a.png", _half(road.id))
        add_classes_quickly(project, [f"k{i}" for i in range(254)])  # ids up to 254: k299 is 255
    document = {
        "images": [{"id": 1, "file_name": "b.jpg", "width": W, "height": H}],
        "categories": [{"id": i + 1, "name": f"k{i}"} for i in range(300)],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 300, "iscrowd": 0, "area": 100.0,
             "segmentation": [[0, 0, W - 1, 0, W - 1, 5, 0, 5]], "bbox": [0, 0, W - 1, 5]}
        ],
    }  # fmt: skip
    (tmp_path / "coco.json").write_text(json.dumps(document))
    with Project.open(folder) as project:
        run_job(import_into_project(project, "coco", tmp_path / "coco.json"))
        labels = project.load_labels("a.png")
        imported = project.load_labels("b.jpg")
        k299 = project.find_class("k299").id
    assert k299 >= 255 and labels.dtype == np.uint16
    assert np.array_equal(labels, _half(road.id, UNLABELED_U16, np.uint16))
    assert (imported[:3, :30] == k299).all() and (imported[10:] == UNLABELED_U16).all()


_CROSSING_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from annotator.project import Project

    project = Project.open(sys.argv[1])
    ids = [c.id for c in project.list_classes()]
    labels = np.full((24, 32), 255, np.uint8)
    labels[:12] = ids[1]
    project.save_labels("a.png", labels)
    print("ready", flush=True)
    while True:
        info = project.add_class(f"extra{len(ids)}")
        ids.append(info.id)
        fresh = np.full((24, 32), 65535, np.uint16)
        fresh[:12] = info.id
        project.save_labels("b.jpg", fresh)
        print(info.id, flush=True)
    """
)


@pytest.mark.parametrize("kill_after_id", [254, 257])
def test_kill_during_the_switch_to_16_bit_keeps_unlabelled(
    folder: Path, kill_after_id: int
) -> None:
    with Project.open(folder) as project:
        add_classes_quickly(project, ["road", "car"] + [f"c{i}" for i in range(2, 250)])
    child = subprocess.Popen(
        [sys.executable, "-c", _CROSSING_CHILD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    confirmed = -1
    while confirmed < kill_after_id:
        confirmed = int(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with Project.open(folder) as project:
        labels, fresh = project.load_labels("a.png"), project.load_labels("b.jpg")
        unlabeled = project.unlabeled_value
        known = {c.id for c in project.list_classes()}
    assert (labels[:12] == 1).all() and (labels[12:] == unlabeled).all()
    assert int(fresh[0, 0]) >= confirmed and int(fresh[0, 0]) in known
    assert (fresh[12:] == unlabeled).all()


# ----------------------------------------------------------------------------- lost database


def _labelled_project(folder: Path) -> dict[str, np.ndarray]:
    with Project.open(folder) as project:
        road, car = project.add_class("road", synonyms=["street"]), project.add_class("car")
        project.delete_class(project.add_class("gone").id)
        tree = project.add_class("tree", color=(1, 2, 3))
        saved = {"a.png": _half(car.id), "b.jpg": _half(tree.id), "sub/c.png": _half(road.id)}
        project.save_labels("a.png", saved["a.png"])
        project.save_labels("b.jpg", saved["b.jpg"], status="reviewed")
        project.save_proposal("sub/c.png", saved["sub/c.png"], 0.4)
    return saved


@pytest.mark.parametrize("how", ["deleted", "emptied"])
def test_a_lost_database_is_rebuilt_from_the_label_files(folder: Path, how: str) -> None:
    saved = _labelled_project(folder)
    db = folder / ".annotator" / "project.db"
    if how == "deleted":
        db.unlink()
    else:
        db.write_bytes(b"")
    with Project.open(folder) as project:
        classes = {c.id: (c.name, c.synonyms, c.color) for c in project.list_classes()}
        assert classes[0] == ("road", ("street",), classes[0][2])
        assert classes[1][0] == "car" and classes[3] == ("tree", (), (1, 2, 3))
        assert np.array_equal(project.load_labels("a.png"), saved["a.png"])
        assert np.array_equal(project.load_labels("b.jpg"), saved["b.jpg"])
        assert np.array_equal(project.load_proposal("sub/c.png"), saved["sub/c.png"])
        assert project.get_image("b.jpg").status == "reviewed"
        assert project.get_image("a.png").status == "edited"
        assert project.get_image("sub/c.png").status == "proposed"
        messages = " ".join(p.message for p in project.list_problems())
        assert "recovered from the label file" in messages
        assert project.add_class("new").id == 4  # ids are never reused, even after a rebuild


def test_labels_of_an_image_away_when_the_database_was_lost_wait_for_it(folder: Path) -> None:
    saved = _labelled_project(folder)
    (folder / ".annotator" / "project.db").unlink()
    away = folder.parent / "renamed-away.png"
    (folder / "a.png").rename(away)
    with Project.open(folder) as project:
        assert "a.png" not in [r.relpath for r in project.list_images()]
        messages = [p.message for p in project.list_problems() if p.relpath == "a.png"]
    assert any("not in the folder; the labels come back with it" in m for m in messages)
    away.rename(folder / "sub" / "moved.png")  # comes back under another name
    with Project.open(folder) as project:
        assert np.array_equal(project.load_labels("sub/moved.png"), saved["a.png"])
        assert project.get_image("sub/moved.png").status == "edited"


_WAL_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from annotator.project import Project

    project = Project.open(sys.argv[1])
    road = project.add_class("road")
    project.close()  # checkpointed: the database file holds road
    project = Project.open(sys.argv[1])
    car = project.add_class("car")
    labels = np.full((24, 32), 255, np.uint8)
    labels[:12] = car.id
    labels[20:] = road.id
    project.save_labels("a.png", labels, status="reviewed")
    print("saved", flush=True)
    time.sleep(60)
    """
)


def test_a_wal_lost_after_a_kill_loses_no_label(folder: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _WAL_CHILD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "saved"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    for suffix in ("-wal", "-shm"):
        Path(f"{folder}/.annotator/project.db{suffix}").unlink(missing_ok=True)
    with Project.open(folder) as project:
        labels = project.load_labels("a.png")
        assert project.get_class(1).name == "car"
        assert project.get_image("a.png").status == "reviewed"
    assert (labels[:12] == 1).all() and (labels[12:20] == UNLABELED_U8).all()
    assert (labels[20:] == 0).all()


def test_export_after_losing_the_database_writes_the_labels(folder: Path, tmp_path: Path) -> None:
    saved = _labelled_project(folder)
    (folder / ".annotator" / "project.db").unlink()
    out = tmp_path / "out"
    assert main(["export", str(folder), "--format", "masks", "--out", str(out)]) == 0
    document = json.loads((out / "classes.json").read_text())
    names = {c["index"]: c["name"] for c in document["classes"]}
    mask = np.asarray(Image.open(out / "masks" / "a.png"))
    assert names[int(mask[0, 0])] == "car" and (mask[12:] == document["unlabeled"]).all()
    assert saved["a.png"][0, 0] == 1


def test_an_id_that_is_not_a_class_is_restored_and_reported(folder: Path) -> None:
    with Project.open(folder) as project:
        road = project.add_class("road")
        project.save_labels("a.png", _half(road.id))
    label_file = folder / ".annotator" / "labels" / "a.png.png"
    legacy = _half(road.id)
    legacy[H // 2 :] = 7  # an older version's file: no metadata, an id the database lacks
    label_file.write_bytes(_labelfile.encode_png(legacy))
    with (
        Project.open(folder, read_only=True) as viewer,
        pytest.raises(LabelFileError, match=r"class ids \[7\].*open the project for editing"),
    ):
        viewer.load_labels("a.png")
    with Project.open(folder) as project:
        labels = project.load_labels("a.png")
        restored = project.get_class(7)
        (problem,) = [p for p in project.list_problems() if "Class id 7" in p.message]
    assert (labels[H // 2 :] == 7).all() and "recovered" in restored.name
    assert "placeholder" in problem.message


def test_close_and_every_few_seconds_checkpoint_the_wal(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def classes_in_db_file_alone(copy_name: str) -> list[str]:
        copy = tmp_path / copy_name
        shutil.copy(folder / ".annotator" / "project.db", copy)  # no -wal beside the copy
        with sqlite3.connect(copy) as db:
            return [row[0] for row in db.execute("SELECT name FROM classes ORDER BY id")]

    Project.open(folder).close()
    monkeypatch.setattr(base, "CHECKPOINT_EVERY_S", 3600.0)
    with Project.open(folder) as project:
        project.add_class("road")
        assert classes_in_db_file_alone("early.db") == []  # still in the WAL only
        monkeypatch.setattr(base, "CHECKPOINT_EVERY_S", 0.0)
        project.add_class("car")
        assert classes_in_db_file_alone("periodic.db") == ["road", "car"]
        monkeypatch.setattr(base, "CHECKPOINT_EVERY_S", 3600.0)
        project.add_class("tree")
    assert classes_in_db_file_alone("closed.db") == ["road", "car", "tree"]


# ----------------------------------------------------------------------------- typed errors


def test_a_damaged_database_says_what_to_do(folder: Path, capsys: pytest.CaptureFixture) -> None:
    _labelled_project(folder)
    db = folder / ".annotator" / "project.db"
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the first page: schema and table roots
    db.write_bytes(bytes(data))
    with pytest.raises(ProjectDamagedError, match="is damaged.*untouched.*rename project.db"):
        Project.open(folder)
    db.write_bytes(b"this is not a database at all" * 200)
    assert (
        main(["export", str(folder), "--format", "masks", "--out", str(folder.parent / "o")]) == 1
    )
    err = capsys.readouterr().err
    assert "is damaged" in err and "Traceback" not in err


def test_a_full_disk_keeps_the_previous_labels(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Project.open(folder) as project:
        road, car = project.add_class("road"), project.add_class("car")
        project.save_labels("a.png", _half(road.id))

        def full(path: Path, data: bytes) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(_labelfile, "write_bytes_atomic", full)
        with pytest.raises(DiskFullError, match="full: the labels of a.png were not saved"):
            project.save_labels("a.png", _half(car.id), status="reviewed")
        monkeypatch.undo()
        assert np.array_equal(project.load_labels("a.png"), _half(road.id))
        assert project.get_image("a.png").status == "edited"
    error = _db.translate(
        Path("/p/project.db"), sqlite3.OperationalError("database or disk is full")
    )
    assert isinstance(error, DiskFullError) and "Free some space" in str(error)


def test_a_newer_project_is_refused_and_left_unchanged(folder: Path) -> None:
    _labelled_project(folder)
    db = folder / ".annotator" / "project.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    before = db.read_bytes()
    for read_only in (False, True):
        with pytest.raises(ProjectVersionError, match="newer version of annotator.*Update"):
            Project.open(folder, read_only=read_only)
    assert db.read_bytes() == before


_READER = textwrap.dedent(
    """
    import sys
    from annotator.errors import ProjectReadOnlyError
    from annotator.project import Project

    try:
        Project.open(sys.argv[1])
    except ProjectReadOnlyError as error:
        print("refused:", error)
    with Project.open(sys.argv[1], read_only=True) as viewer:
        print("read:", len(viewer.list_images()), viewer.load_labels("a.png")[0, 0])
    """
)


def _read_only_command(side: Path, folder: Path) -> list[str]:
    """The reader run on a read-only sidecar: a read-only bind mount (root ignores file
    permissions), or the folder's write bits removed."""
    command = [sys.executable, "-c", _READER, str(folder)]
    if os.geteuid() != 0:
        side.chmod(0o555)
        return command
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if shutil.which("unshare") is None or probe.returncode != 0:
        pytest.skip("running as root without mount namespaces: no way to make a folder read-only")
    mount = f"mount --bind '{side}' '{side}' && mount -o remount,bind,ro '{side}'"
    return ["unshare", "-m", "sh", "-c", f'{mount} && exec "$0" "$@"', *command]


def test_a_read_only_sidecar_opens_read_only(folder: Path) -> None:
    _labelled_project(folder)
    side = folder / ".annotator"
    try:
        result = subprocess.run(_read_only_command(side, folder), capture_output=True, text=True)
    finally:
        side.chmod(0o755)
    assert result.returncode == 0, result.stderr
    refused, read = result.stdout.strip().splitlines()
    assert refused.startswith("refused:") and "Open it read-only" in refused
    assert read == "read: 3 1"


def test_a_writer_on_an_unwritable_sidecar_is_told_to_open_read_only(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from annotator.project import _lock

    Project.open(folder).close()

    def refused(path: Path, flags: int, mode: int = 0o644) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_lock, "open_nofollow", refused)
    with pytest.raises(ProjectReadOnlyError, match="Open it read-only"):
        Project.open(folder)


# ----------------------------------------------------------------------------- files


def test_label_files_get_ordinary_permissions(folder: Path) -> None:
    old = os.umask(0o022)
    try:
        with Project.open(folder) as project:
            project.save_labels("a.png", _half(project.add_class("road").id))
    finally:
        os.umask(old)
    mode = stat.S_IMODE((folder / ".annotator" / "labels" / "a.png.png").stat().st_mode)
    assert mode == 0o644


def test_an_export_inside_the_project_is_not_scanned(folder: Path, make_image) -> None:
    make_image(folder / "exports" / "masks" / "a.png", seed=3)
    make_image(folder / "exports" / "JPEGImages" / "b.jpg", seed=4)
    (folder / "exports" / ".annotator-export").write_text("")
    make_image(folder / "other" / "d.png", seed=5)
    with Project.open(folder) as project:
        relpaths = [r.relpath for r in project.list_images()]
    assert relpaths == ["a.png", "b.jpg", "other/d.png", "sub/c.png"]
