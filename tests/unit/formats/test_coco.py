"""COCO export checked with pycocotools itself; COCO import of polygons, RLE and iscrowd."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from annotator.formats import ExportOptions, ImportOptions, export_project, import_into_project
from annotator.formats._common import DEFAULT_EXPORT
from annotator.formats.coco import annotation_mask, image_annotations
from annotator.progress import run_job
from annotator.project import UNLABELED_U8, Project


def _rebuild(coco, image: dict, class_ids: list[int]) -> np.ndarray:
    """A label map from the annotations, through pycocotools' annToMask only."""
    out = np.full((image["height"], image["width"]), UNLABELED_U8, np.uint8)
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=image["id"])):
        mask = coco.annToMask(ann).astype(bool)
        assert not (out[mask] != UNLABELED_U8).any(), "annotations of one image overlap"
        out[mask] = class_ids[ann["category_id"] - 1]
    return out


@pytest.mark.parametrize("per_region", [True, False])
def test_pycocotools_rebuilds_every_pixel(labelled, tmp_path: Path, per_region: bool) -> None:
    from pycocotools.coco import COCO

    project, maps = labelled
    options = ExportOptions(per_region=per_region)
    run_job(export_project(project, "coco", tmp_path / "out.json", options))
    coco = COCO(str(tmp_path / "out.json"))
    class_ids = [c.id for c in project.list_classes()]
    assert [c["name"] for c in coco.dataset["categories"]] == ["road", "car", "tree"]
    assert sorted(i["file_name"] for i in coco.dataset["images"]) == sorted(maps)
    for image in coco.dataset["images"]:
        assert np.array_equal(_rebuild(coco, image, class_ids), maps[image["file_name"]])
    for ann in coco.dataset["annotations"]:
        mask = coco.annToMask(ann)
        ys, xs = np.nonzero(mask)
        assert ann["area"] == mask.sum() and ann["iscrowd"] == 0
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    per_class = {(a["image_id"], a["category_id"]) for a in coco.dataset["annotations"]}
    assert (len(per_class) == len(coco.dataset["annotations"])) == (not per_region)


def test_width_and_height_follow_exif_orientation(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    root = tmp_path / "phone"
    root.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 30 wide x 20 high, shown 20 wide x 30 high
    Image.new("RGB", (30, 20)).save(root / "p.jpg", exif=exif)
    with Project.open(root) as project:
        road = project.add_class("road")
        labels = np.full((30, 20), road.id, np.uint8)
        project.save_labels("p.jpg", labels)
        run_job(export_project(project, "coco", tmp_path / "c.json"))
    coco = COCO(str(tmp_path / "c.json"))
    (image,) = coco.dataset["images"]
    assert (image["width"], image["height"]) == (20, 30)
    assert coco.annToMask(coco.dataset["annotations"][0]).shape == (30, 20)


def test_split_writes_train_and_val_files(labelled, tmp_path: Path) -> None:
    project, maps = labelled
    report = run_job(export_project(project, "coco", tmp_path / "c", ExportOptions(split=0.5)))
    train = json.loads((tmp_path / "c" / "annotations_train.json").read_text())
    val = json.loads((tmp_path / "c" / "annotations_val.json").read_text())
    names = [i["file_name"] for i in train["images"] + val["images"]]
    assert sorted(names) == sorted(maps) and len(train["images"]) == 2
    assert len(report.outputs) == 2


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.uint8,
        st.tuples(st.integers(1, 24), st.integers(1, 24)),
        elements=st.sampled_from([0, 1, 2, 255]),
    )
)
def test_rle_round_trip_of_random_maps(labels: np.ndarray) -> None:
    indices = np.where(labels == 255, -1, labels).astype(np.int64)
    rebuilt = np.full(labels.shape, 255, np.uint8)
    for ann in image_annotations(indices, 1, 1, DEFAULT_EXPORT):
        mask = annotation_mask(ann, *labels.shape)
        assert mask.sum() == ann["area"] and not (rebuilt[mask] != 255).any()
        rebuilt[mask] = ann["category_id"] - 1
    assert np.array_equal(rebuilt, labels)


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.uint8,
        st.tuples(st.integers(1, 20), st.integers(1, 20)),
        elements=st.sampled_from([0, 1, 255]),
    )
)
def test_polygons_rebuild_each_region_with_its_holes_filled(labels: np.ndarray) -> None:
    """Polygons follow pixel edges exactly; only holes (which COCO polygons cannot express)
    come back filled."""
    from scipy import ndimage

    indices = np.where(labels == 255, -1, labels).astype(np.int64)
    options = ExportOptions(polygons=True)
    for ann in image_annotations(indices, 1, 1, options):
        rebuilt = annotation_mask(ann, *labels.shape)
        region = labels == ann["category_id"] - 1
        assert rebuilt.sum() == ann["area"], "area is not the polygon's own (RLE) area"
        region &= ndimage.binary_fill_holes(rebuilt)
        assert np.array_equal(rebuilt, ndimage.binary_fill_holes(region))  # 4-connected holes


def test_polygon_export_loads_in_pycocotools(labelled, tmp_path: Path) -> None:
    """Polygon mode is lossy at region borders only: inner pixels are covered, none outside."""
    import cv2
    from pycocotools.coco import COCO

    project, maps = labelled
    run_job(export_project(project, "coco", tmp_path / "p.json", ExportOptions(polygons=True)))
    coco = COCO(str(tmp_path / "p.json"))
    assert all(isinstance(a["segmentation"], list) for a in coco.dataset["annotations"])
    image = next(i for i in coco.dataset["images"] if i["file_name"] == "a.png")
    road = project.list_classes()[0].id
    rebuilt = np.zeros((30, 40), np.uint8)
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=image["id"], catIds=[1])):
        rebuilt |= coco.annToMask(ann)
    truth = (maps["a.png"] == road).astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    inner = cv2.erode(truth, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    assert inner.sum() > 0 and (rebuilt[truth > 0] == 1).all()
    assert not (rebuilt & (1 - cv2.dilate(truth, kernel))).any()


def test_import_polygons_rle_and_crowd(tmp_path: Path) -> None:
    from pycocotools import mask as mask_utils

    root = tmp_path / "imgs"
    root.mkdir()
    Image.new("RGB", (10, 8)).save(root / "x.png")
    crowd = np.zeros((8, 10), np.uint8)
    crowd[5:, :3] = 1
    rle = mask_utils.encode(np.asfortranarray(np.pad(np.ones((2, 2), np.uint8), ((0, 6), (6, 2)))))
    document = {
        "images": [{"id": 7, "file_name": "some/where/x.png", "width": 10, "height": 8}],
        "categories": [{"id": 3, "name": "road"}, {"id": 9, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "segmentation": [[0, 0, 4, 0, 4, 4, 0, 4]], "area": 16, "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 9, "segmentation": {"size": [8, 10], "counts": rle["counts"].decode()}, "area": 4, "iscrowd": 0},
            {"id": 3, "image_id": 7, "category_id": 9, "segmentation": _uncompressed(crowd), "area": 9, "iscrowd": 1},
        ],
    }  # fmt: skip
    (tmp_path / "in.json").write_text(json.dumps(document))
    with Project.open(root) as project:
        report = run_job(import_into_project(project, "coco", tmp_path / "in.json"))
        assert report.written == 1 and report.skipped == []
        road, car = project.find_class("road").id, project.find_class("car").id
        labels = project.load_labels("x.png")
        assert project.get_image("x.png").status == "reviewed"  # imported labels are truth
    assert (labels[1:4, 1:4] == road).all()
    assert (labels[0:2, 6:8] == car).all() and (labels[5:, :3] == car).all()
    assert labels[7, 9] == UNLABELED_U8


def _uncompressed(mask: np.ndarray) -> dict:
    flat = mask.ravel(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts = [0, *counts]
    return {"size": list(mask.shape), "counts": counts}


def test_import_export_import_is_identical(labelled, tmp_path: Path, fresh_copy) -> None:
    project, maps = labelled
    run_job(export_project(project, "coco", tmp_path / "first.json"))
    with fresh_copy("one") as first:
        run_job(import_into_project(first, "coco", tmp_path / "first.json"))
        run_job(export_project(first, "coco", tmp_path / "second.json"))
        once = {r: first.load_labels(r) for r in maps}
        names = {c.id: c.name for c in first.list_classes()}
    with fresh_copy("two") as second:
        run_job(import_into_project(second, "coco", tmp_path / "second.json"))
        for relpath in maps:
            assert np.array_equal(second.load_labels(relpath), once[relpath])
        assert {c.id: c.name for c in second.list_classes()} == names
    by_name = {c.name: c.id for c in project.list_classes()}
    for relpath, labels in maps.items():  # and the same regions as the original project
        original_names = np.vectorize(
            lambda v: "-" if v == 255 else {i: n for n, i in by_name.items()}[v]
        )(labels)
        imported_names = np.vectorize(lambda v: "-" if v == 255 else names[v])(once[relpath])
        assert (original_names == imported_names).all()


def test_existing_labels_are_kept_without_overwrite(labelled, tmp_path: Path) -> None:
    project, maps = labelled
    run_job(export_project(project, "coco", tmp_path / "c.json"))
    road = project.find_class("road").id
    project.save_labels("a.png", np.full((30, 40), road, np.uint8))
    report = run_job(import_into_project(project, "coco", tmp_path / "c.json"))
    assert report.written == 0 and "use --overwrite" in report.skipped[0]
    assert (project.load_labels("a.png") == road).all()
    run_job(
        import_into_project(project, "coco", tmp_path / "c.json", ImportOptions(overwrite=True))
    )
    assert np.array_equal(project.load_labels("a.png"), maps["a.png"])
