"""The project store as the GUI, the formats and training use it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotator.errors import LabelFileError, ProjectError
from annotator.project import UNLABELED_U8, UNLABELED_U16, Project


def _labels(value_rows: list[int], width: int = 32, height: int = 24) -> np.ndarray:
    """A [24, 32] uint8 map whose row bands hold the given values."""
    out = np.full((height, width), UNLABELED_U8, np.uint8)
    for i, value in enumerate(value_rows):
        out[i * 4 : (i + 1) * 4] = value
    return out


def test_open_lists_images_recursively_and_skips_the_sidecar(folder: Path) -> None:
    with Project.open(folder) as project:
        records = project.list_images()
    assert [r.relpath for r in records] == ["a.png", "b.jpg", "sub/c.png"]
    assert all((r.width, r.height, r.status) == (32, 24, "new") for r in records)
    assert (folder / ".annotator" / "project.db").exists()


def test_open_rejects_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="is not a folder"):
        Project.open(tmp_path / "nope")


def test_labels_round_trip_and_status(folder: Path) -> None:
    with Project.open(folder) as project:
        road, car = project.add_class("road"), project.add_class("car")
        labels = _labels([road.id, car.id])
        project.save_labels("a.png", labels)
        assert np.array_equal(project.load_labels("a.png"), labels)
        assert project.load_labels("b.jpg") is None
        assert project.get_image("a.png").status == "edited"
        assert [r.relpath for r in project.list_images(has_labels=True)] == ["a.png"]
        assert [r.relpath for r in project.list_images(status="new")] == ["b.jpg", "sub/c.png"]


def test_save_labels_refuses_wrong_size_and_unknown_ids(folder: Path) -> None:
    with Project.open(folder) as project:
        road = project.add_class("road")
        with pytest.raises(LabelFileError, match="must match the image"):
            project.save_labels("a.png", np.zeros((10, 10), np.uint8))
        with pytest.raises(ProjectError, match=r"class ids \[7\]"):
            project.save_labels("a.png", _labels([road.id, 7]))
        with pytest.raises(ProjectError, match="not an image of the project"):
            project.save_labels("zzz.png", _labels([road.id]))


def test_minus_one_and_int_dtypes_mean_unlabeled(folder: Path) -> None:
    with Project.open(folder) as project:
        road = project.add_class("road")
        labels = np.full((24, 32), -1, np.int64)
        labels[0] = road.id
        project.save_labels("a.png", labels)
        stored = project.load_labels("a.png")
    assert stored.dtype == np.uint8
    assert (stored[0] == road.id).all() and (stored[1:] == UNLABELED_U8).all()


def test_proposals_are_not_labels(folder: Path) -> None:
    with Project.open(folder) as project:
        road = project.add_class("road")
        proposal = _labels([road.id])
        project.save_proposal("a.png", proposal, mean_confidence=0.5)
        assert project.load_labels("a.png") is None
        assert project.get_image("a.png").status == "proposed"
        assert project.list_images(has_labels=True) == []
        accepted = project.accept_proposal("a.png")
        assert np.array_equal(project.load_labels("a.png"), accepted)
        assert project.get_image("a.png").status == "reviewed"


def test_a_new_proposal_never_touches_human_labels(folder: Path) -> None:
    with Project.open(folder) as project:
        road, car = project.add_class("road"), project.add_class("car")
        human = _labels([road.id])
        project.save_labels("a.png", human)
        project.save_proposal("a.png", _labels([car.id, car.id]), mean_confidence=0.9)
        assert np.array_equal(project.load_labels("a.png"), human)
        assert project.get_image("a.png").status == "edited"


def test_review_queue_is_least_confident_first(folder: Path) -> None:
    with Project.open(folder) as project:
        road = project.add_class("road")
        for relpath, confidence in (("a.png", 0.9), ("b.jpg", 0.2), ("sub/c.png", 0.5)):
            project.save_proposal(relpath, _labels([road.id]), confidence)
        assert [r.relpath for r in project.review_queue()] == ["b.jpg", "sub/c.png", "a.png"]
        project.set_status("b.jpg", "reviewed")
        assert [r.relpath for r in project.review_queue()] == ["sub/c.png", "a.png"]


def test_next_unchecked_wraps_around(folder: Path) -> None:
    with Project.open(folder) as project:
        project.set_status("b.jpg", "reviewed")
        assert project.next_unchecked().relpath == "a.png"
        assert project.next_unchecked(after="a.png").relpath == "sub/c.png"
        assert project.next_unchecked(after="sub/c.png").relpath == "a.png"
        for record in project.list_images():
            project.set_status(record.relpath, "reviewed")
        assert project.next_unchecked() is None
        with pytest.raises(ProjectError, match="Unknown status"):
            project.set_status("a.png", "done")


def test_class_names_are_unique_and_renames_rewrite_nothing(folder: Path) -> None:
    with Project.open(folder) as project:
        road = project.add_class("road", synonyms=["street", " "])
        assert road.synonyms == ("street",) and road.prompt == "road; street"
        with pytest.raises(ProjectError, match="already exists"):
            project.add_class(" Road ")
        project.save_labels("a.png", _labels([road.id]))
        project.rename_class(road.id, "lane")
        assert project.get_class(road.id).name == "lane"
        assert project.find_class("LANE").id == road.id
        assert np.array_equal(project.load_labels("a.png"), _labels([road.id]))


def test_merge_relabels_labels_and_proposals(folder: Path) -> None:
    with Project.open(folder) as project:
        road, street, car = (project.add_class(n) for n in ("road", "street", "car"))
        project.save_labels("a.png", _labels([road.id, street.id, car.id]))
        project.save_proposal("b.jpg", _labels([street.id]), 0.3)
        project.merge_classes(street.id, road.id)
        assert [c.name for c in project.list_classes()] == ["road", "car"]
        assert np.array_equal(project.load_labels("a.png"), _labels([road.id, road.id, car.id]))
        assert np.array_equal(project.load_proposal("b.jpg"), _labels([road.id]))
        stored = np.asarray(Image.open(folder / ".annotator/labels/a.png.png"))
        assert street.id not in np.unique(stored)  # rewritten on disk, not only on read


def test_delete_makes_pixels_unlabeled_and_ids_are_never_reused(folder: Path) -> None:
    with Project.open(folder) as project:
        road, car = project.add_class("road"), project.add_class("car")
        project.save_labels("a.png", _labels([road.id, car.id]))
        project.delete_class(car.id)
        assert np.array_equal(project.load_labels("a.png"), _labels([road.id]))
        assert project.add_class("tree").id not in (road.id, car.id)


def test_alias_applies_to_maps_not_yet_rewritten(folder: Path) -> None:
    """A crash between the class change and the file rewrite still reads the merged ids."""
    with Project.open(folder) as project:
        road, street = project.add_class("road"), project.add_class("street")
        project.save_labels("a.png", _labels([street.id]))
        old_file = (folder / ".annotator/labels/a.png.png").read_bytes()
        project.merge_classes(street.id, road.id)
        (folder / ".annotator/labels/a.png.png").write_bytes(old_file)
    with Project.open(folder) as project:
        assert np.array_equal(project.load_labels("a.png"), _labels([road.id]))


def test_uint16_maps_beyond_254_class_ids(folder: Path) -> None:
    with Project.open(folder) as project:
        ids = [project.add_class(f"c{i}").id for i in range(300)]
        assert project.label_dtype == np.uint16 and project.unlabeled_value == UNLABELED_U16
        labels = np.full((24, 32), UNLABELED_U16, np.uint16)
        labels[:12] = ids[299]
        labels[12:16] = ids[3]
        project.save_labels("a.png", labels)
        assert np.array_equal(project.load_labels("a.png"), labels)


def test_settings_persist(folder: Path) -> None:
    with Project.open(folder) as project:
        project.set_setting("engine", {"model": "ViT-B-16", "versions": [1, 2]})
    with Project.open(folder) as project:
        assert project.get_setting("engine") == {"model": "ViT-B-16", "versions": [1, 2]}
        assert project.get_setting("missing", 3) == 3


def test_custom_sidecar_location(folder: Path, tmp_path: Path) -> None:
    sidecar = tmp_path / "elsewhere"
    with Project.open(folder, sidecar=sidecar) as project:
        project.add_class("road")
    assert (sidecar / "project.db").exists() and not (folder / ".annotator").exists()


def test_closed_project_says_so(folder: Path) -> None:
    project = Project.open(folder)
    project.close()
    with pytest.raises(ProjectError, match="is closed"):
        project.list_images()


def test_reorder_merge_into_itself_and_delete_labels(folder: Path) -> None:
    with Project.open(folder) as project:
        road, car, tree = (project.add_class(n) for n in ("road", "car", "tree"))
        project.reorder_classes([tree.id, road.id, car.id])
        assert [c.name for c in project.list_classes()] == ["tree", "road", "car"]
        with pytest.raises(ProjectError, match="every class id once"):
            project.reorder_classes([tree.id])
        with pytest.raises(ProjectError, match="merged into itself"):
            project.merge_classes(car.id, car.id)
        project.save_proposal("a.png", _labels([road.id]), 0.5)
        project.save_labels("a.png", _labels([car.id]))
        project.delete_labels("a.png")
        record = project.get_image("a.png")
        assert project.load_labels("a.png") is None
        assert (record.status, record.has_labels, record.has_proposal) == ("proposed", False, True)
        with pytest.raises(ProjectError, match="'edited' or 'reviewed'"):
            project.save_labels("a.png", _labels([car.id]), status="proposed")


def test_read_only_reports_damaged_files_without_moving_them(folder: Path) -> None:
    with Project.open(folder) as project:
        road = project.add_class("road")
        project.save_labels("a.png", _labels([road.id]))
    label_file = folder / ".annotator" / "labels" / "a.png.png"
    label_file.write_bytes(b"garbage")
    with Project.open(folder, read_only=True) as viewer:
        assert viewer.load_labels("a.png") is None
        (problem,) = viewer.list_problems()
        assert "a.png is damaged" in problem.message
    assert label_file.exists()  # a read-only viewer changes nothing on disk
