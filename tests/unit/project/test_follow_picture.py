"""Labels follow the picture, not the path: renumbered frames, swapped names, a picture replaced
by another one, and a kill half way through moving the label files (issue 8)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from annotator.project import UNLABELED_U8, Project, _reconcile

H, W = 24, 32


def _band(class_id: int) -> np.ndarray:
    labels = np.full((H, W), UNLABELED_U8, np.uint8)
    labels[: 4 + class_id] = class_id
    return labels


@pytest.fixture
def frames(tmp_path: Path, make_image) -> Path:
    """``f0.png`` .. ``f3.png``, distinct pictures of one size, each labelled with its index."""
    root = tmp_path / "frames"
    for index in range(4):
        make_image(root / f"f{index}.png", seed=50 + index)
    with Project.open(root) as project:
        for index in range(4):
            project.add_class(f"frame{index}")
            project.save_labels(f"f{index}.png", _band(index))
    return root


def _labels(root: Path) -> dict[str, int | None]:
    """Path -> the class of its stored labels (``None``: no labels)."""
    with Project.open(root) as project:
        found = {r.relpath: project.load_labels(r.relpath) for r in project.list_images()}
    return {path: None if labels is None else int(labels[0, 0]) for path, labels in found.items()}


def test_renumbered_frames_keep_each_picture_its_labels(frames: Path) -> None:
    (frames / "f0.png").unlink()  # delete the first frame, renumber the rest
    for index in (1, 2, 3):
        os.rename(frames / f"f{index}.png", frames / f"f{index - 1}.png")
    assert _labels(frames) == {"f0.png": 1, "f1.png": 2, "f2.png": 3}
    with Project.open(frames) as project:
        assert np.array_equal(project.load_labels("f2.png"), _band(3))
        assert project.get_image("f0.png").status == "edited"


def test_swapped_names_swap_the_labels(frames: Path) -> None:
    os.rename(frames / "f1.png", frames / "tmp.png")
    os.rename(frames / "f2.png", frames / "f1.png")
    os.rename(frames / "tmp.png", frames / "f2.png")
    assert _labels(frames) == {"f0.png": 0, "f1.png": 2, "f2.png": 1, "f3.png": 3}


def test_a_picture_replaced_by_another_is_not_shown_the_old_labels(
    frames: Path, make_image
) -> None:
    make_image(frames / "f1.png", seed=99)  # same size, another picture, the old one is gone
    assert _labels(frames) == {"f0.png": 0, "f1.png": None, "f2.png": 2, "f3.png": 3}
    with Project.open(frames) as project:
        (problem,) = [p for p in project.list_problems() if p.relpath == "f1.png"]
        assert project.get_image("f1.png").status == "new"
    assert "not the one its label map was saved for" in problem.message
    assert len(list((frames / ".annotator" / "quarantine").rglob("f1.png.png"))) == 1


def test_a_copy_over_an_image_follows_the_copied_picture(frames: Path) -> None:
    os.replace(frames / "f3.png", frames / "f1.png")  # f1's picture is gone, f3's moved
    assert _labels(frames) == {"f0.png": 0, "f1.png": 3, "f2.png": 2}


def test_a_touched_file_keeps_its_labels(frames: Path) -> None:
    os.utime(frames / "f2.png", ns=(1, 1))  # mtime changed, same picture
    assert _labels(frames)["f2.png"] == 2


def test_a_label_file_saved_for_another_picture_is_set_aside(frames: Path) -> None:
    """A database restored from an older copy must not pair a newer label file with the wrong
    picture: the file says which picture it was saved for."""
    side = frames / ".annotator"
    shutil.copy(side / "labels" / "f1.png.png", side / "labels" / "f2.png.png")
    os.utime(side / "labels" / "f2.png.png")  # newer than the database row
    assert _labels(frames)["f2.png"] is None
    with Project.open(frames) as project:
        assert any(
            p.relpath == "f2.png" and "moved to" in p.message for p in project.list_problems()
        )


@pytest.mark.parametrize("crash_at", range(8))
def test_a_kill_while_moving_label_files_is_finished_next_time(
    frames: Path, monkeypatch: pytest.MonkeyPatch, crash_at: int
) -> None:
    """A swap plus a renumbering needs label files moved in a cycle; die after ``crash_at``
    moves, then open again."""
    os.rename(frames / "f0.png", frames / "tmp.png")
    os.rename(frames / "f1.png", frames / "f0.png")
    os.rename(frames / "tmp.png", frames / "f1.png")
    (frames / "f2.png").unlink()
    os.rename(frames / "f3.png", frames / "f2.png")
    real_move, moves = _reconcile.move_atomic, []

    def dying_move(source: Path, target: Path) -> None:
        if len(moves) == crash_at:
            raise KeyboardInterrupt("killed")
        moves.append(source)
        real_move(source, target)

    monkeypatch.setattr(_reconcile, "move_atomic", dying_move)
    with pytest.raises(KeyboardInterrupt):
        Project.open(frames)
    monkeypatch.undo()
    assert _labels(frames) == {"f0.png": 1, "f1.png": 0, "f2.png": 3}
    assert not list((frames / ".annotator" / "staging").glob("*.png"))
