"""Exports that keep what users rely on: source ids, class metadata and statuses through a round
trip, upright images, labelme files labelme reads back exactly, safe output folders."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from annotator.formats import export_project, import_into_project
from annotator.formats._output import EXPORT_MARKER
from annotator.progress import run_job
from annotator.project import UNLABELED_U8, Project


def test_coco_keeps_source_ids_and_supercategories(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    for name in ("000139.jpg", "000285.jpg", "new.jpg"):
        Image.new("RGB", (20, 10)).save(root / name)
    square = [[0, 0, 8, 0, 8, 8, 0, 8]]
    document = {
        "images": [{"id": 139, "file_name": "000139.jpg", "width": 20, "height": 10},
                   {"id": 285, "file_name": "000285.jpg", "width": 20, "height": 10}],
        "categories": [{"id": 67, "name": "dining table", "supercategory": "furniture"},
                       {"id": 3, "name": "car", "supercategory": "vehicle"}],
        "annotations": [
            {"id": 1, "image_id": 139, "category_id": 67, "segmentation": square, "area": 81},
            {"id": 2, "image_id": 285, "category_id": 3, "segmentation": square, "area": 81},
        ],
    }  # fmt: skip
    (tmp_path / "in.json").write_text(json.dumps(document))
    with Project.open(root) as project:
        run_job(import_into_project(project, "coco", tmp_path / "in.json"))
        lamp = project.add_class("lamp")
        project.save_labels("new.jpg", np.full((10, 20), lamp.id, np.uint8))
        run_job(export_project(project, "coco", tmp_path / "out"))
    out = json.loads((tmp_path / "out" / "annotations.json").read_text())
    categories = {c["name"]: (c["id"], c["supercategory"]) for c in out["categories"]}
    assert categories == {
        "dining table": (67, "furniture"),
        "car": (3, "vehicle"),
        "lamp": (68, ""),
    }
    images = {i["file_name"]: i["id"] for i in out["images"]}
    assert images["000139.jpg"] == 139 and images["000285.jpg"] == 285
    assert images["new.jpg"] not in (139, 285)
    by_image = {a["image_id"]: a["category_id"] for a in out["annotations"]}
    assert by_image[139] == 67 and by_image[285] == 3 and by_image[images["new.jpg"]] == 68
    assert str(root) not in out["info"]["description"]


def test_exif_rotated_images_are_written_upright(tmp_path: Path) -> None:
    import cv2
    from pycocotools.coco import COCO

    root = tmp_path / "phone"
    root.mkdir()
    stored = np.zeros((20, 30, 3), np.uint8)
    stored[:, :10] = (250, 10, 10)  # red on the stored left: the top once rotated by 90 cw
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(root / "p.jpg", exif=exif, quality=95)
    with Project.open(root) as project:
        road = project.add_class("road")
        labels = np.full((30, 20), UNLABELED_U8, np.uint8)
        labels[:10] = road.id  # the red band, as the user sees it
        project.save_labels("p.jpg", labels)
        shown = project.load_image("p.jpg")
        run_job(export_project(project, "coco", tmp_path / "c"))
    coco = COCO(str(tmp_path / "c" / "annotations.json"))
    (image,) = coco.dataset["images"]
    mask = coco.annToMask(coco.dataset["annotations"][0])
    path = tmp_path / "c" / "images" / image["file_name"]
    plain = np.asarray(Image.open(path).convert("RGB"))  # PIL without exif_transpose
    opencv = cv2.imread(str(path))[..., ::-1]
    for loaded in (plain, opencv):
        assert loaded.shape[:2] == mask.shape == (image["height"], image["width"])
        assert np.abs(loaded.astype(int) - shown).mean() < 4
    red = plain[..., 0] > 128  # the mask covers the red band
    assert red[mask > 0].mean() > 0.95 and not red[mask == 0].any()


def _decorate(project: Project) -> dict[str, tuple]:
    classes = project.list_classes()
    project.set_class_color(classes[0].id, (12, 34, 56))
    project.set_synonyms(classes[1].id, ("automobile", "vehicle"))
    project.set_novel(classes[1].id, True)
    project.set_novel(classes[0].id, False)
    project.set_status("a.png", "reviewed")
    project.set_status("sub/c.png", "reviewed")
    return {c.name: (c.color, c.synonyms, c.novel) for c in project.list_classes()}


@pytest.mark.parametrize(("fmt", "source"), [("coco", "annotations.json"), ("masks", ""), ("labelme", "")])  # fmt: skip
def test_own_export_import_export_keeps_classes_and_statuses(
    labelled, tmp_path: Path, fresh_copy, fmt: str, source: str
) -> None:
    project, maps = labelled
    classes = _decorate(project)
    statuses = {r.relpath: r.status for r in project.list_images()}
    run_job(export_project(project, fmt, tmp_path / "first"))
    with fresh_copy() as again:
        report = run_job(import_into_project(again, fmt, tmp_path / "first" / source))
        assert report.written == 4, report.skipped
        assert {c.name: (c.color, c.synonyms, c.novel) for c in again.list_classes()} == classes
        assert {r.relpath: r.status for r in again.list_images()} == statuses
        names = {c.id: c.name for c in again.list_classes()}
        original = {c.id: c.name for c in project.list_classes()}
        for relpath, labels in maps.items():
            to_names = np.vectorize(lambda v, t: "-" if v == UNLABELED_U8 else t[v], excluded={1})
            assert (to_names(again.load_labels(relpath), names) == to_names(labels, original)).all()
        run_job(export_project(again, fmt, tmp_path / "second"))
    if fmt == "coco":
        first, second = (
            json.loads((tmp_path / p / source).read_text()) for p in ("first", "second")
        )
        assert first["categories"] == second["categories"]
        assert [i["id"] for i in first["images"]] == [i["id"] for i in second["images"]]


def _labelme_shapes_to_label(
    document: dict, height: int, width: int, names: list[str]
) -> np.ndarray:
    """labelme's shapes_to_label conventions, written out for the test (polygon: PIL outline and
    fill; mask: base64 patch at the rounded first point, integer corners crop it)."""
    out = np.full((height, width), 255, np.uint8)
    for shape in document["shapes"]:
        value = names.index(shape["label"])
        if shape["shape_type"] == "mask":
            patch = np.asarray(Image.open(io.BytesIO(base64.b64decode(shape["mask"])))) > 0
            (x1, y1), (x2, y2) = np.round(np.asarray(shape["points"])).astype(int)
            region = np.zeros((height, width), bool)
            region[y1 : y2 + 1, x1 : x2 + 1] = patch[: y2 - y1 + 1, : x2 - x1 + 1]
        else:
            canvas = Image.new("L", (width, height), 0)
            ImageDraw.Draw(canvas).polygon([tuple(p) for p in shape["points"]], outline=1, fill=1)
            region = np.asarray(canvas) > 0
        out[region] = value
    return out


def test_labelme_export_reads_back_exactly_with_labelme_conventions(labelled, tmp_path: Path) -> None:  # fmt: skip
    project, maps = labelled
    holes = np.full((30, 40), project.list_classes()[0].id, np.uint8)
    holes[10:20, 10:20] = UNLABELED_U8  # a ring: needs a mask shape
    holes[0:5, 30:35] = project.list_classes()[2].id  # a square: a polygon
    project.save_labels("a.png", holes)
    maps["a.png"] = holes
    run_job(export_project(project, "labelme", tmp_path / "lm"))
    names = [c.name for c in project.list_classes()]
    for relpath, labels in maps.items():
        document = json.loads((tmp_path / "lm" / relpath).with_suffix(".json").read_text())
        assert (tmp_path / "lm" / relpath).parent.joinpath(document["imagePath"]).is_file()
        rebuilt = _labelme_shapes_to_label(document, document["imageHeight"], document["imageWidth"], names)  # fmt: skip
        compact = np.full(labels.shape, 255, np.uint8)
        for index, info in enumerate(project.list_classes()):
            compact[labels == info.id] = index
        assert np.array_equal(rebuilt, compact), relpath
    kinds = [
        s["shape_type"] for s in json.loads((tmp_path / "lm" / "a.json").read_text())["shapes"]
    ]
    assert kinds.count("polygon") == 1 and kinds.count("mask") == 1


@pytest.mark.parametrize("fmt", ["coco", "voc", "masks", "labelme"])
def test_export_inside_the_project_is_marked_and_leaves_no_temp_files(labelled, fmt: str) -> None:
    project, maps = labelled
    out = project.root / "exports" / fmt
    report = run_job(export_project(project, fmt, out))
    assert report.written == 4
    assert (out / EXPORT_MARKER).is_file()
    assert not [p for p in out.rglob("*.tmp")]
    sub = {"coco": "images", "voc": "VOCdevkit", "masks": "masks", "labelme": "."}[fmt]
    assert (out / sub / EXPORT_MARKER).is_file()


_CHILD = """
import sys
from annotator.formats import export_project
from annotator.progress import run_job
from annotator.project import Project
with Project.open(sys.argv[1], read_only=True) as project:
    print("ready", flush=True)
    while True:
        run_job(export_project(project, sys.argv[2], sys.argv[3]))
"""


def test_killed_export_leaves_only_complete_files(tmp_path: Path) -> None:
    root = tmp_path / "big"
    root.mkdir()
    rng = np.random.default_rng(0)
    with Project.open(root) as project:
        pass
    for number in range(12):
        Image.fromarray(rng.integers(0, 255, (300, 400, 3), np.uint8)).save(
            root / f"{number:02}.png"
        )
    with Project.open(root) as project:
        road = project.add_class("road")
        for number in range(12):
            project.save_labels(f"{number:02}.png", np.full((300, 400), road.id, np.uint8))
    out = tmp_path / "out"
    for delay in (0.3, 0.7, 1.1):
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(root), "voc", str(out)], stdout=subprocess.PIPE)  # fmt: skip
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        for path in out.rglob("*"):
            if path.is_file() and not path.name.startswith(".") and path.suffix in (".jpg", ".png"):
                with Image.open(path) as image:
                    image.load()  # raises on a truncated file
    with Project.open(root) as project:
        run_job(export_project(project, "voc", out))
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize("fmt", ["coco", "voc", "labelme"])
def test_an_unreadable_image_is_skipped_with_its_reason(labelled, tmp_path: Path, fmt: str) -> None:
    project, _ = labelled
    (project.root / "b.jpg").write_bytes(b"\xff\xd8 not a jpeg any more")
    report = run_job(export_project(project, fmt, tmp_path / fmt))
    if fmt in ("coco", "labelme"):  # copied as they are: the label file only names the image
        assert report.written == 4
    else:
        assert report.written == 3 and report.skipped[0].startswith("b.jpg: ")


@pytest.mark.parametrize("fmt", ["coco", "voc", "masks", "labelme"])
def test_exported_files_get_ordinary_permissions(labelled, tmp_path: Path, fmt: str) -> None:
    project, _ = labelled
    old = os.umask(0o022)
    try:
        run_job(export_project(project, fmt, tmp_path / fmt))
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / fmt).rglob("*") if p.is_file()]
    assert len(files) >= 5
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {"0o644"}
