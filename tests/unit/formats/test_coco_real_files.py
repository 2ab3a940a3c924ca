"""COCO files as other tools and real data sets write them (CVAT, detection-only exports, COCO
2017 oddities), checked pixel for pixel against pycocotools' own ``annToMask``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from annotator.errors import FormatError
from annotator.formats import ImportOptions, import_into_project
from annotator.formats._coco_masks import decode_compressed_counts
from annotator.progress import run_job
from annotator.project import UNLABELED_U8, Project

W, H = 30, 20


def _reference(document: dict, image_id, keep=lambda ann: True) -> dict[int, np.ndarray]:
    """category id -> mask, painted largest area first, through pycocotools only."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = json.loads(json.dumps(document))
    coco.createIndex()
    out = {}
    anns = [a for a in coco.dataset["annotations"] if a["image_id"] == image_id and keep(a)]
    canvas = np.full((H, W), -1)
    for ann in sorted(anns, key=lambda a: -a["area"]):
        image = {"height": H, "width": W}
        coco.imgs[ann["image_id"]] = image
        canvas[coco.annToMask(ann).astype(bool)] = ann["category_id"]
    for category in {a["category_id"] for a in anns}:
        out[category] = canvas == category
    return out


def _project(tmp_path: Path, names=("a.jpg", "b.jpg")) -> Path:
    root = tmp_path / "imgs"
    root.mkdir()
    for name in names:
        Image.new("RGB", (W, H)).save(root / name)
    return root


def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [H, W], "counts": rle["counts"].decode()}


def _import(root: Path, tmp_path: Path, document: dict, options=None):
    path = tmp_path / "in.json"
    path.write_text(json.dumps(document))
    with Project.open(root) as project:
        report = run_job(import_into_project(project, "coco", path, options))
        names = {c.id: c.name for c in project.list_classes()}
        labels = {r.relpath: project.load_labels(r.relpath) for r in project.list_images()}
        status = {r.relpath: r.status for r in project.list_images()}
    return report, names, labels, status


def test_cvat_style_file_with_oddities(tmp_path: Path) -> None:
    """String ids, no width/height, a 4-coordinate polygon beside a good one, a crowd RLE, an
    annotation whose category does not exist, one whose image does not exist."""
    root = _project(tmp_path)
    crowd = np.zeros((H, W), bool)
    crowd[12:, 20:] = True
    document = {
        "images": [{"id": "img-a", "file_name": "a.jpg"}, {"id": "img-b", "file_name": "b.jpg", "width": W, "height": H}],
        "categories": [{"id": "1", "name": "road", "supercategory": "ground"}, {"id": 2, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": "img-a", "category_id": "1", "segmentation": [[0, 0, 25, 0, 25, 15, 0, 15], [1, 1, 3, 3]], "area": 400, "iscrowd": 0},
            {"id": 2, "image_id": "img-a", "category_id": 2, "segmentation": _rle(crowd), "area": 80, "iscrowd": 1},
            {"id": 3, "image_id": "img-a", "category_id": 7, "segmentation": [[0, 0, 5, 0, 5, 5]], "area": 12},
            {"id": 4, "image_id": "img-zz", "category_id": 2, "segmentation": [[0, 0, 5, 0, 5, 5]], "area": 12},
            {"id": 5, "image_id": "img-b", "category_id": 2, "segmentation": [[3.5, 2.5, 20.2, 4.1, 11.7, 17.9]], "area": 150},
        ],
    }  # fmt: skip
    report, names, labels, status = _import(root, tmp_path, document)
    assert report.written == 2
    text = "\n".join(report.skipped)
    assert "a polygon with 4 coordinates" in text and "category_id 7 has no usable category" in text
    assert "image_id 'img-zz' names no usable image" in text
    by_name = {n: i for i, n in names.items()}
    reference = {**document, "images": [{"id": 1}], "categories": [{"id": 1}, {"id": 2}]}
    reference["annotations"] = [
        {**a, "image_id": 1, "category_id": int(a["category_id"]),
         "segmentation": [p for p in a["segmentation"] if len(p) >= 6] if isinstance(a["segmentation"], list) else a["segmentation"]}
        for a in document["annotations"] if a["image_id"] == "img-a" and a["category_id"] in ("1", 2)
    ]  # fmt: skip
    masks = _reference(reference, 1)
    assert np.array_equal(labels["a.jpg"] == by_name["road"], masks[1])
    assert np.array_equal(labels["a.jpg"] == by_name["car"], masks[2])
    assert status["a.jpg"] == "reviewed"
    reference["annotations"] = [{**document["annotations"][4], "image_id": 1, "category_id": 2}]
    assert np.array_equal(labels["b.jpg"] == by_name["car"], _reference(reference, 1)[2])


def _detection_only() -> dict:
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": W, "height": H}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2.5, 3.0, 10.0, 7.5], "segmentation": [], "area": 75},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [20, 10, 5, 5], "area": 25},
        ],
    }  # fmt: skip


def test_detection_only_file_says_no_masks_and_stores_nothing(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (tmp_path / "in.json").write_text(json.dumps(_detection_only()))
    with Project.open(root) as project:
        with pytest.raises(FormatError, match="No masks in this file.*--boxes-as-masks"):
            run_job(import_into_project(project, "coco", tmp_path / "in.json"))
        assert project.list_classes() == []
        assert not project.get_image("a.jpg").has_labels


def test_boxes_as_masks_fill_each_box_as_pycocotools_does(tmp_path: Path) -> None:
    from pycocotools import mask as mask_utils

    root = _project(tmp_path)
    document = _detection_only()
    report, names, labels, _ = _import(root, tmp_path, document, ImportOptions(boxes_as_masks=True))
    assert report.written == 1
    expected = np.zeros((H, W), bool)
    for ann in document["annotations"]:
        expected |= (
            mask_utils.decode(mask_utils.frPyObjects(np.array([ann["bbox"]], float), H, W))[..., 0]
            > 0
        )
    assert np.array_equal(labels["a.jpg"] != UNLABELED_U8, expected)


def test_duplicate_ids_are_reported_not_merged(tmp_path: Path) -> None:
    root = _project(tmp_path)
    square = [[0, 0, 10, 0, 10, 10, 0, 10]]
    document = {
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        "categories": [{"id": 1, "name": "road"}, {"id": 1, "name": "car"}, {"id": 3, "name": "tree"}, {"id": 3, "name": "tree"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "segmentation": square, "area": 100},
            {"id": 2, "image_id": 2, "category_id": 1, "segmentation": square, "area": 100},
            {"id": 3, "image_id": 2, "category_id": 3, "segmentation": [[12, 0, 20, 0, 20, 8]], "area": 30},
        ],
    }  # fmt: skip
    report, names, labels, _ = _import(root, tmp_path, document)
    text = "\n".join(report.skipped)
    assert "image id 1 is used by 2 images (a.jpg, b.jpg)" in text
    assert "category id 1 is listed twice ('road' and 'car')" in text
    assert "category id 3 ('tree') is listed twice" in text
    assert labels["a.jpg"] is None and report.written == 1
    assert sorted(names.values()) == ["tree"]


@pytest.mark.parametrize(
    ("segmentation", "reason"),
    [
        ([[0, 0, float("nan"), 5, 5, 5]], "not a finite number"),
        ([[0, 0, 1e12, 5, 5, 5]], "far outside the 30 x 20 image"),
        ({"size": [200000, 200000], "counts": "abc"}, "its RLE is 200000 x 200000"),
        ({"size": [H, W], "counts": [5, 3]}, "its RLE runs cover 8 pixels, the image has 600"),
        ({"size": [H, W], "counts": "0000"}, "RLE runs cover 0 pixels"),
        ({"size": [H, W], "counts": "\u00ff"}, "RLE string holds"),
    ],
)  # fmt: skip
def test_malformed_annotation_is_skipped_with_its_reason(
    tmp_path: Path, segmentation, reason: str
) -> None:
    root = _project(tmp_path)
    document = {
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        "categories": [{"id": 1, "name": "road"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": segmentation, "area": 1},
            {"id": 2, "image_id": 2, "category_id": 1, "segmentation": [[0, 0, 5, 0, 5, 5]], "area": 1},
        ],
    }  # fmt: skip
    report, _, labels, status = _import(root, tmp_path, document)
    assert reason in "\n".join(report.skipped)
    assert labels["a.jpg"] is None and status["a.jpg"] == "new", "an empty map was stored"
    assert labels["b.jpg"] is not None and report.written == 1


def test_declared_size_is_compared_before_anything_is_allocated(tmp_path: Path) -> None:
    import tracemalloc

    root = _project(tmp_path)
    document = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 200000, "height": 200000}],
        "categories": [{"id": 1, "name": "road"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 5, 0, 5, 5]]}],
    }  # fmt: skip
    tracemalloc.start()
    report, *_ = _import(root, tmp_path, document)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "the file says the image is 200000 x 200000, the image is 30 x 20" in report.skipped[0]
    assert peak < 50 * 2**20


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.uint8, st.tuples(st.integers(1, 30), st.integers(1, 30)), elements=st.integers(0, 1))
)
def test_compressed_rle_decoder_agrees_with_pycocotools(mask: np.ndarray) -> None:
    from pycocotools import mask as mask_utils

    from annotator.formats._coco_masks import runs_to_mask

    rle = mask_utils.encode(np.asfortranarray(mask))
    runs = decode_compressed_counts(rle["counts"].decode(), "test")
    assert np.array_equal(runs_to_mask(runs, *mask.shape, "test"), mask_utils.decode(rle) > 0)


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_masks_in_the_stored_orientation_of_exif_rotated_jpegs_are_turned_upright(
    tmp_path: Path, orientation: int
) -> None:
    """Tools that ignore EXIF write the stored size and stored-orientation masks; the reference
    is PIL's own ``exif_transpose`` of that mask."""
    from PIL import ImageOps
    from pycocotools import mask as mask_utils

    root = tmp_path / "phone"
    root.mkdir()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", (W, H)).save(root / "p.jpg", exif=exif)  # stored 30 x 20, shown 20 x 30
    polygon = [1, 1, 25, 1, 25, 6, 8, 6, 8, 18, 1, 18]  # an L: no symmetry hides a wrong turn
    document = {
        "images": [{"id": 1, "file_name": "p.jpg", "width": W, "height": H}],
        "categories": [{"id": 1, "name": "road"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [polygon], "area": 200}],
    }  # fmt: skip
    report, names, labels, _ = _import(root, tmp_path, document)
    assert report.written == 1 and "rotated upright" in report.summary("imported")
    stored = mask_utils.decode(mask_utils.frPyObjects([polygon], H, W))[..., 0] * 255
    buffer = io.BytesIO()
    Image.fromarray(stored.astype(np.uint8)).save(buffer, format="PNG", exif=exif)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(buffer))) > 0
    assert upright.shape == (W, H) and np.array_equal(labels["p.jpg"] != UNLABELED_U8, upright)
