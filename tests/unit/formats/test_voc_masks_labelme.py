"""VOC checked with torchvision's VOCSegmentation; plain masks; labelme import."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotator.errors import FormatError
from annotator.formats import ExportOptions, ImportOptions, export_project, import_into_project
from annotator.formats.voc import VOC_CLASSES
from annotator.progress import run_job
from annotator.project import UNLABELED_U8, Project
from annotator.project._palette import voc_color


def _compact(project: Project, labels: np.ndarray) -> np.ndarray:
    """Project ids -> display indices (255 stays 255), as every index-mask export writes."""
    out = np.full(labels.shape, 255, np.uint8)
    for index, info in enumerate(project.list_classes()):
        out[labels == info.id] = index
    return out


def test_torchvision_loads_the_voc_export_pixel_for_pixel(labelled, tmp_path: Path) -> None:
    from torchvision.datasets import VOCSegmentation

    project, maps = labelled
    report = run_job(export_project(project, "voc", tmp_path, ExportOptions(split=0.5)))
    assert report.written == 4
    seen = {}
    for split in ("train", "val"):
        data = VOCSegmentation(str(tmp_path), year="2012", image_set=split, download=False)
        assert len(data) == 2
        for index in range(len(data)):
            image, target = data[index]
            name = Path(data.masks[index]).stem
            assert target.mode == "P" and image.size == target.size
            seen[name] = np.asarray(target)
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    assert sorted(seen) == ["a", "b", "sub__c", "sub__d"]
    for relpath, labels in maps.items():
        name = relpath.rsplit(".", 1)[0].replace("/", "__")
        assert np.array_equal(seen[name], _compact(project, labels))
    palette = Image.open(voc / "SegmentationClass" / "a.png").getpalette()
    assert palette[3:6] == [128, 0, 0] and palette[6:9] == [0, 128, 0]
    assert (voc / "class_names.txt").read_text().split() == ["road", "car", "tree"]


def test_voc_images_are_jpeg_copied_or_converted(labelled, tmp_path: Path) -> None:
    project, _ = labelled
    run_job(export_project(project, "voc", tmp_path))
    images = tmp_path / "VOCdevkit" / "VOC2012" / "JPEGImages"
    assert (images / "b.jpg").read_bytes() == (project.root / "b.jpg").read_bytes()
    for name, source in (("a", "a.png"), ("sub__d", "sub/d.tif")):
        with Image.open(images / f"{name}.jpg") as converted:
            assert converted.format == "JPEG"
            pixels = np.asarray(converted).astype(int)
        assert np.abs(pixels - project.load_image(source)).mean() < 12


def test_voc_import_with_standard_and_given_names(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    Image.new("RGB", (6, 4)).save(root / "2007_000032.jpg")
    masks = tmp_path / "VOC2012" / "SegmentationClass"
    masks.mkdir(parents=True)
    indices = np.array([[0, 0, 15, 15, 255, 1]] * 4, np.uint8)
    mask = Image.fromarray(indices, mode="P")
    mask.putpalette([v for i in range(256) for v in voc_color(i)])
    mask.save(masks / "2007_000032.png")
    with Project.open(root) as project:
        run_job(import_into_project(project, "voc", tmp_path / "VOC2012"))
        labels = project.load_labels("2007_000032.jpg")
        names = {c.id: c.name for c in project.list_classes()}
        assert [names[v] for v in labels[0, [0, 2, 5]]] == ["background", "person", "aeroplane"]
        assert labels[0, 4] == UNLABELED_U8
        assert len(names) == len(VOC_CLASSES)
    with Project.open(root) as project:
        options = ImportOptions(class_names=("sky", "x"), overwrite=True)
        report = run_job(import_into_project(project, "voc", masks, options))
    assert report.written == 0
    assert "class indices [15] have no class name" in report.skipped[0]


def test_voc_export_import_round_trip(labelled, tmp_path: Path, fresh_copy) -> None:
    project, maps = labelled
    run_job(export_project(project, "voc", tmp_path / "v1"))
    with fresh_copy() as again:
        report = run_job(
            import_into_project(again, "voc", tmp_path / "v1" / "VOCdevkit" / "VOC2012")
        )
        assert report.written == 4, report.skipped
        assert [c.name for c in again.list_classes()] == ["road", "car", "tree"]
        for relpath, labels in maps.items():
            assert np.array_equal(
                _compact(again, again.load_labels(relpath)), _compact(project, labels)
            )


def test_masks_export_and_round_trip(labelled, tmp_path: Path, fresh_copy) -> None:
    project, maps = labelled
    run_job(export_project(project, "masks", tmp_path / "m"))
    document = json.loads((tmp_path / "m" / "classes.json").read_text())
    assert [c["name"] for c in document["classes"]] == ["road", "car", "tree"]
    assert document["unlabeled"] == 255
    mask = np.asarray(Image.open(tmp_path / "m" / "masks" / "sub" / "c.png"))
    assert np.array_equal(mask, _compact(project, maps["sub/c.png"]))
    with fresh_copy() as again:
        run_job(import_into_project(again, "masks", tmp_path / "m"))
        for relpath, labels in maps.items():
            assert np.array_equal(
                _compact(again, again.load_labels(relpath)), _compact(project, labels)
            )


def test_export_only_chosen_statuses_and_says_when_nothing_matches(
    labelled, tmp_path: Path
) -> None:
    project, _ = labelled
    project.set_status("a.png", "reviewed")
    report = run_job(
        export_project(project, "masks", tmp_path / "r", ExportOptions(statuses=("reviewed",)))
    )
    assert report.written == 1 and (tmp_path / "r" / "masks" / "a.png").exists()
    project.set_status("a.png", "edited")
    with pytest.raises(FormatError, match="No image .* has human labels \\(reviewed\\)"):
        run_job(
            export_project(project, "masks", tmp_path / "r2", ExportOptions(statuses=("reviewed",)))
        )


def _mask_b64(mask: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_labelme_import(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    Image.new("RGB", (20, 10)).save(root / "sub" / "frame.jpg")
    shapes = [
        {"label": "field", "shape_type": "rectangle", "points": [[0, 0], [19, 9]]},
        {"label": "tree", "shape_type": "polygon", "points": [[2, 2], [6, 2], [6, 6], [2, 6]]},
        {"label": "pond", "shape_type": "circle", "points": [[15, 5], [17, 5]]},
        {"label": "rock", "shape_type": "mask", "points": [[10, 0], [11, 1]], "mask": _mask_b64(np.ones((2, 2)))},
        {"label": "__ignore__", "shape_type": "polygon", "points": [[0, 8], [1, 8], [1, 9], [0, 9]]},
    ]  # fmt: skip
    document = {
        "shapes": shapes,
        "imagePath": "../imgs/sub/frame.jpg",
        "imageHeight": 10,
        "imageWidth": 20,
    }
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "frame.json").write_text(json.dumps(document))
    with Project.open(root) as project:
        report = run_job(import_into_project(project, "labelme", tmp_path / "json"))
        assert report.written == 1, report.skipped
        labels = project.load_labels("sub/frame.jpg")
        names = {c.id: c.name for c in project.list_classes()}
    assert sorted(names.values()) == ["field", "pond", "rock", "tree"]
    assert names[labels[4, 4]] == "tree" and names[labels[0, 19]] == "field"
    assert names[labels[5, 15]] == "pond" and names[labels[1, 11]] == "rock"
    assert labels[9, 0] == UNLABELED_U8


def test_labelme_size_mismatch_is_reported_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    Image.new("RGB", (20, 10)).save(root / "x.png")
    document = {"shapes": [], "imagePath": "x.png", "imageHeight": 99, "imageWidth": 20}
    (root / "x.json").write_text(json.dumps(document))
    with Project.open(root) as project:
        report = run_job(import_into_project(project, "labelme", root / "x.json"))
    assert report.written == 0 and "the image is 20 x 10" in report.skipped[0]


def test_voc_import_of_rgb_colour_masks(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    Image.new("RGB", (3, 1)).save(root / "x.jpg")
    (tmp_path / "seg").mkdir()
    colours = np.array([[voc_color(0), voc_color(15), voc_color(255)]], np.uint8)
    Image.fromarray(colours).save(tmp_path / "seg" / "x.png")
    with Project.open(root) as project:
        run_job(import_into_project(project, "voc", tmp_path / "seg"))
        names = {c.id: c.name for c in project.list_classes()}
        labels = project.load_labels("x.jpg")
    assert names[labels[0, 0]] == "background" and names[labels[0, 1]] == "person"
    assert labels[0, 2] == UNLABELED_U8


def test_images_differing_only_in_suffix_do_not_overwrite_each_other(
    tmp_path: Path, fresh_copy
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    Image.new("RGB", (4, 2)).save(root / "a.png")
    Image.new("RGB", (4, 2)).save(root / "a.jpg")
    with Project.open(root) as project:
        road, car = project.add_class("road"), project.add_class("car")
        project.save_labels("a.png", np.full((2, 4), road.id, np.uint8))
        project.save_labels("a.jpg", np.full((2, 4), car.id, np.uint8))
        for fmt in ("voc", "masks"):
            assert run_job(export_project(project, fmt, tmp_path / fmt)).written == 2
    assert sorted(p.name for p in (tmp_path / "masks" / "masks").glob("*.png")) == [
        "a__jpg.png",
        "a__png.png",
    ]
    for fmt, source in (
        ("masks", tmp_path / "masks"),
        ("voc", tmp_path / "voc" / "VOCdevkit" / "VOC2012"),
    ):
        with fresh_copy(f"again-{fmt}") as again:
            assert run_job(import_into_project(again, fmt, source)).written == 2
            names = {c.id: c.name for c in again.list_classes()}
            assert names[again.load_labels("a.png")[0, 0]] == "road"
            assert names[again.load_labels("a.jpg")[0, 0]] == "car"
