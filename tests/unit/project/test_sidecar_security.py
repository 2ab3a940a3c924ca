"""A project folder from someone else must not make the store act outside the project: symlinks
inside the sidecar, database rows naming paths outside, the write lock swapped underneath."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from annotator.errors import ProjectError, ProjectLockedError, UnsafePathError
from annotator.project import UNLABELED_U8, Project
from annotator.project._paths import check_relpath


def _labelled(folder: Path) -> None:
    with Project.open(folder) as project:
        road = project.add_class("road")
        project.save_labels("a.png", np.full((24, 32), road.id, np.uint8))


def test_a_symlinked_lock_file_is_refused_not_written_through(folder: Path, tmp_path: Path) -> None:
    Project.open(folder).close()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    lock = folder / ".annotator" / "lock"
    lock.unlink()
    lock.symlink_to(victim)
    with pytest.raises(UnsafePathError, match="lock is a symbolic link"):
        Project.open(folder)
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("escape", ["../../../victim.png", "ABSOLUTE"])
def test_database_rows_naming_paths_outside_are_dropped(
    folder: Path, tmp_path: Path, escape: str
) -> None:
    _labelled(folder)
    victim = tmp_path / "victim.png.png"  # where labels/<escape>.png points
    victim.write_bytes(b"not yours")
    relpath = str(tmp_path / "victim.png") if escape == "ABSOLUTE" else escape
    with sqlite3.connect(folder / ".annotator" / "project.db") as db:
        db.execute(
            "INSERT INTO images (relpath, size, content_hash, has_labels, has_proposal, "
            "added_at, updated_at) VALUES (?, 9, 'x', 1, 1, 0, 0)",
            (relpath,),
        )
    db.close()
    with Project.open(folder) as project:
        assert [r.relpath for r in project.list_images(include_missing=True)] == [
            "a.png", "b.jpg", "sub/c.png",
        ]  # fmt: skip
        assert any("outside the project folder" in p.message for p in project.list_problems())
        with pytest.raises(ProjectError, match="not an image of the project"):
            project.load_labels(relpath)
        with pytest.raises(UnsafePathError, match="not inside the project"):
            project.image_path(relpath)
    assert victim.read_bytes() == b"not yours"
    assert not (folder / ".annotator" / "quarantine").exists()


def test_a_symlinked_labels_folder_is_refused(folder: Path, tmp_path: Path) -> None:
    _labelled(folder)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / ".keep.tmp").write_text("someone's file")
    labels = folder / ".annotator" / "labels"
    (labels / "a.png.png").rename(outside / "a.png.png")
    labels.rmdir()
    labels.symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="labels is a symbolic link"):
        Project.open(folder)
    assert (outside / ".keep.tmp").exists()
    with Project.open(folder, read_only=True) as viewer, pytest.raises(UnsafePathError):
        viewer.load_labels("a.png")


def test_a_symlinked_sub_folder_of_labels_is_not_written_through(
    folder: Path, tmp_path: Path
) -> None:
    with Project.open(folder) as project:
        road = project.add_class("road")
    outside = tmp_path / "outside"
    outside.mkdir()
    (folder / ".annotator" / "labels").mkdir(exist_ok=True)
    (folder / ".annotator" / "labels" / "sub").symlink_to(outside, target_is_directory=True)
    with Project.open(folder) as project, pytest.raises(UnsafePathError):
        project.save_labels("sub/c.png", np.full((24, 32), road.id, np.uint8))
    assert list(outside.iterdir()) == []


def test_active_json_cannot_name_a_folder_outside(folder: Path, tmp_path: Path) -> None:
    from training.errors import ModelVersionError
    from training.models import version_store

    outside = tmp_path / "evil"
    outside.mkdir()
    (outside / "meta.json").write_text(json.dumps({"created": 0}))
    Project.open(folder).close()
    models = folder / ".annotator" / "models"
    models.mkdir()
    (models / "active.json").write_text(json.dumps({"active": "../../../evil"}))
    with Project.open(folder) as project:
        store = version_store(project)
        assert store.active_id() is None
        with pytest.raises(ModelVersionError, match="not a model version"):
            store.load_head("../../../evil")
        with pytest.raises(ModelVersionError, match="not a model version"):
            store.set_active("../../../evil")
        (models / "v0001").symlink_to(outside, target_is_directory=True)
        assert store.list() == []
    models.rename(folder / "models-real")
    models.symlink_to(outside, target_is_directory=True)
    with Project.open(folder) as project, pytest.raises(UnsafePathError):
        version_store(project)


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from annotator.project import Project

    project = Project.open(sys.argv[1])
    print("holding", flush=True)
    time.sleep(60)
    """
)


def test_deleting_the_lock_file_does_not_let_a_second_writer_in(folder: Path) -> None:
    Project.open(folder).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        (folder / ".annotator" / "lock").unlink()  # e.g. a "stale lock" clean-up
        with pytest.raises(ProjectLockedError, match="already open for editing"):
            Project.open(folder)
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 5
    while True:  # the kernel drops the dead holder's lock
        try:
            Project.open(folder).close()
            break
        except ProjectLockedError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_label_files_that_are_symlinks_are_not_followed(folder: Path, tmp_path: Path) -> None:
    _labelled(folder)
    label = folder / ".annotator" / "labels" / "a.png.png"
    elsewhere = tmp_path / "elsewhere.png"
    label.rename(elsewhere)
    label.symlink_to(elsewhere)
    before = elsewhere.read_bytes()
    with Project.open(folder) as project:
        assert project.load_labels("a.png") is None  # not read through the link: set aside
        assert any("a.png is damaged" in p.message for p in project.list_problems())
        project.save_labels("a.png", np.full((24, 32), UNLABELED_U8, np.uint8))
    assert elsewhere.read_bytes() == before and not label.is_symlink()


def test_a_symlinked_sidecar_or_database_is_refused(folder: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    Project.open(folder).close()
    (folder / ".annotator").rename(elsewhere)
    (folder / ".annotator").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UnsafePathError, match=r"\.annotator is a symbolic link"):
        Project.open(folder)
    with Project.open(folder, sidecar=elsewhere) as project:  # named on purpose: fine
        assert len(project.list_images()) == 3
    (folder / ".annotator").unlink()
    (folder / ".annotator").mkdir()
    (folder / ".annotator" / "project.db").symlink_to(elsewhere / "project.db")
    for read_only in (False, True):
        with pytest.raises(UnsafePathError, match="project.db is a symbolic link"):
            Project.open(folder, read_only=read_only)


@given(st.text(alphabet=st.sampled_from("ab./\\:\0 -"), max_size=12))
def test_an_accepted_relpath_never_leaves_its_folder(relpath: str) -> None:
    base = "/project/.annotator/labels"
    try:
        check_relpath(relpath)
    except UnsafePathError:
        return
    joined = os.path.normpath(os.path.join(base, relpath))
    assert joined.startswith(base + "/") and "\0" not in relpath


def test_odd_but_legal_file_names_keep_their_labels(folder: Path, make_image) -> None:
    for name in ("a:b.png", "back\\slash.png", "dots..png"):
        make_image(folder / name, seed=len(name))
    with Project.open(folder) as project:
        road = project.add_class("road")
        for name in ("a:b.png", "back\\slash.png", "dots..png"):
            project.save_labels(name, np.full((24, 32), road.id, np.uint8))
    with Project.open(folder) as project:
        for name in ("a:b.png", "back\\slash.png", "dots..png"):
            assert project.load_labels(name)[0, 0] == road.id
        assert project.list_problems() == []
