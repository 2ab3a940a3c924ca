"""Files in labelme's, X-AnyLabeling's and ISAT's own formats, built from their documented
schemas; pixels checked against a separate rasterisation written here the way labelme's
``shape_to_mask`` / ``shapes_to_label`` draw (PIL ImageDraw, outline and fill)."""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from annotator.formats import ImportOptions, import_into_project
from annotator.progress import run_job
from annotator.project import UNLABELED_U8, Project

W, H = 60, 40


def _labelme_reference(shape: dict, line_width: int = 10, point_size: int = 5) -> np.ndarray:
    """labelme's conventions, written out for the test: 4-point X-AnyLabeling rectangles are the
    box of their corners; rotation/quadrilateral/oriented_rectangle are polygons."""
    canvas = Image.new("L", (W, H), 0)
    draw = ImageDraw.Draw(canvas)
    kind, xy = shape.get("shape_type") or "polygon", [tuple(p) for p in shape["points"]]
    if kind == "rectangle":
        xs, ys = [p[0] for p in xy], [p[1] for p in xy]
        draw.rectangle(((min(xs), min(ys)), (max(xs), max(ys))), outline=1, fill=1)
    elif kind == "circle":
        (cx, cy), (px, py) = xy
        d = math.sqrt((cx - px) ** 2 + (cy - py) ** 2)
        draw.ellipse(((cx - d, cy - d), (cx + d, cy + d)), outline=1, fill=1)
    elif kind == "line":
        draw.line(xy=xy, fill=1, width=line_width)
    elif kind == "linestrip":
        draw.line(xy=xy, fill=1, width=line_width, joint="curve")
    elif kind == "point":
        (cx, cy) = xy[0]
        draw.ellipse(((cx - point_size, cy - point_size), (cx + point_size, cy + point_size)), outline=1, fill=1)  # fmt: skip
    else:
        draw.polygon(xy=xy, outline=1, fill=1)
    return np.array(canvas, dtype=bool)


def _project(tmp_path: Path, names: tuple[str, ...] = ("scene.jpg",)) -> Path:
    root = tmp_path / "imgs"
    root.mkdir(exist_ok=True)
    for name in names:
        Image.new("RGB", (W, H), (90, 120, 30)).save(root / name)
    return root


def _write(folder: Path, name: str, document: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(document))
    return folder / name


def _xany(shapes: list[dict], image: str = "scene.jpg") -> dict:
    """An X-AnyLabeling v2.x file (its fields: score, difficult, direction, attributes...)."""
    full = [
        {"label": s["label"], "score": None, "points": s["points"], "group_id": None,
         "description": None, "difficult": False, "shape_type": s["shape_type"], "flags": {},
         "attributes": {}, "kie_linking": [], **({"direction": s["direction"]} if "direction" in s else {})}
        for s in shapes
    ]  # fmt: skip
    return {"version": "2.4.4", "flags": {}, "shapes": full, "imagePath": image,
            "imageData": None, "imageHeight": H, "imageWidth": W}  # fmt: skip


X_ANY_SHAPES = [
    {"label": "field", "shape_type": "rectangle", "points": [[1.6, 2.2], [40.3, 2.2], [40.3, 30.7], [1.6, 30.7]]},
    {"label": "car", "shape_type": "rotation", "direction": 0.52,
     "points": [[30.0, 5.0], [50.0, 16.5], [44.0, 27.0], [24.0, 15.5]]},
    {"label": "sign", "shape_type": "quadrilateral", "points": [[5, 30], [15, 28], [17, 38], [4, 37]]},
    {"label": "roof", "shape_type": "oriented_rectangle", "points": [[45, 30], [55, 33], [53, 39], [43, 36]]},
    {"label": "wire", "shape_type": "line", "points": [[0, 0], [59, 10]]},
    {"label": "road", "shape_type": "linestrip", "points": [[2, 20], [20, 25], [30, 38]]},
    {"label": "pole", "shape_type": "point", "points": [[52.4, 6.6]]},
    {"label": "pond", "shape_type": "circle", "points": [[12, 12], [15, 16]]},
]  # fmt: skip


def test_x_anylabeling_shapes_paint_as_labelme_would(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _write(root, "scene.json", _xany(X_ANY_SHAPES))
    with Project.open(root) as project:
        report = run_job(import_into_project(project, "labelme", root))
        assert report.written == 1 and report.skipped == [], report.skipped
        labels = project.load_labels("scene.jpg")
        names = {c.id: c.name for c in project.list_classes()}
        assert project.get_image("scene.jpg").status == "reviewed"
    expected = np.full((H, W), "-", object)
    for shape in X_ANY_SHAPES:
        expected[_labelme_reference(shape)] = shape["label"]
    got = np.vectorize(lambda v: "-" if v == UNLABELED_U8 else names[v])(labels)
    assert (got == expected).all()
    assert {"car", "sign", "roof", "wire", "road", "pole"} <= set(np.unique(got))


def test_line_width_and_point_radius_are_configurable(tmp_path: Path) -> None:
    root = _project(tmp_path)
    shapes = [s for s in X_ANY_SHAPES if s["shape_type"] in ("line", "point")]
    _write(root, "scene.json", _xany(shapes))
    options = ImportOptions(line_width=3, point_radius=2)
    with Project.open(root) as project:
        run_job(import_into_project(project, "labelme", root, options))
        labels = project.load_labels("scene.jpg")
        wire = project.find_class("wire").id
    line, point = _labelme_reference(shapes[0], 3), _labelme_reference(shapes[1], point_size=2)
    assert np.array_equal(labels == wire, line & ~point)  # the point is painted later
    assert np.array_equal(labels != UNLABELED_U8, line | point)
    assert line.sum() < _labelme_reference(shapes[0]).sum()  # narrower than labelme's 10 px


def _mask_b64(mask: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize(
    ("origin", "placed_at"),
    [((-3.0, -2.0), (-3, -2)), ((55.0, 35.0), (55, 35)), ((10.6, 4.4), (11, 4)), ((-2.5, 38.5), (-2, 38))],
)  # fmt: skip
def test_mask_shapes_are_rounded_and_clipped_as_labelme_does(
    tmp_path: Path, origin: tuple[float, float], placed_at: tuple[int, int]
) -> None:
    root = _project(tmp_path, ("scene.jpg", "later.jpg"))
    rng = np.random.default_rng(3)
    patch = rng.random((8, 9)) < 0.6
    x, y = origin
    points = [[x, y], [x + 8, y + 7]]  # labelme: inclusive corner points of the patch
    shape = {"label": "rock", "shape_type": "mask", "points": points, "mask": _mask_b64(patch)}
    _write(root, "scene.json", {"shapes": [shape], "imagePath": "scene.jpg"})
    poly = {"label": "rock", "shape_type": "polygon", "points": [[0, 0], [5, 0], [5, 5]]}
    _write(root, "later.json", {"shapes": [poly], "imagePath": "later.jpg"})
    expected = np.zeros((H + 40, W + 40), bool)  # patch placed on a padded canvas, then cut
    px, py = placed_at
    expected[py + 20 : py + 28, px + 20 : px + 29] = patch
    expected = expected[20 : 20 + H, 20 : 20 + W]
    with Project.open(root) as project:
        report = run_job(import_into_project(project, "labelme", root))
        later = project.load_labels("later.jpg")
        labels = project.load_labels("scene.jpg")
    assert later is not None, "a mask shape outside the image stopped the import"
    if expected.any():
        assert report.written == 2 and np.array_equal(labels != UNLABELED_U8, expected)
    else:
        assert labels is None


def test_embedded_image_data_is_added_to_the_project(tmp_path: Path) -> None:
    root = _project(tmp_path, ("other.jpg",))
    picture = np.zeros((H, W, 3), np.uint8)
    picture[:, :, 0] = np.arange(W, dtype=np.uint8)[None] * 4
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    document = {
        "shapes": [{"label": "sky", "shape_type": "rectangle", "points": [[0, 0], [59, 9]]}],
        "imagePath": "C:\\Users\\me\\..\\photos\\beach.png", "imageHeight": H, "imageWidth": W,
        "imageData": base64.b64encode(buffer.getvalue()).decode(),
    }  # fmt: skip
    _write(tmp_path / "json", "beach.json", document)
    with Project.open(root) as project:
        report = run_job(import_into_project(project, "labelme", tmp_path / "json"))
        assert report.written == 1, report.skipped
        assert "added to the project as beach.png" in report.summary("imported")
        assert np.array_equal(project.load_image("beach.png"), picture)
        assert (project.load_labels("beach.png")[:10] == project.find_class("sky").id).all()
    with Project.open(root, read_only=True) as project:  # (already there now: matched by name)
        assert project.get_image("beach.png").status == "reviewed"
    document["imagePath"], document["imageData"] = "gone.png", None
    _write(tmp_path / "json2", "gone.json", document)
    with Project.open(root) as project:
        report = run_job(import_into_project(project, "labelme", tmp_path / "json2"))
    assert report.written == 0 and "the file embeds none (imageData is empty)" in report.skipped[0]


def test_only_unsupported_shapes_store_nothing(tmp_path: Path) -> None:
    root = _project(tmp_path)
    shapes = [{"label": "box", "shape_type": "cuboid", "points": [[1, 1], [5, 5]]}]
    _write(root, "scene.json", {"shapes": shapes, "imagePath": "scene.jpg"})
    with Project.open(root) as project:
        report = run_job(import_into_project(project, "labelme", root))
        record = project.get_image("scene.jpg")
    assert report.written == 0 and not record.has_labels and record.status == "new"
    text = report.summary("imported")
    assert "shape type 'cuboid' is not supported" in text and "nothing stored" in text


def test_fill_unlabeled_names_the_uncovered_pixels(tmp_path: Path) -> None:
    root = _project(tmp_path)
    shapes = [
        {"label": "car", "shape_type": "rectangle", "points": [[10, 10], [20, 20]]},
        {"label": "__ignore__", "shape_type": "rectangle", "points": [[30, 0], [35, 5]]},
    ]
    _write(root, "scene.json", {"shapes": shapes, "imagePath": "scene.jpg"})
    options = ImportOptions(fill_unlabeled="_background_", status="edited")
    with Project.open(root) as project:
        run_job(import_into_project(project, "labelme", root, options))
        labels = project.load_labels("scene.jpg")
        background, car = project.find_class("_background_").id, project.find_class("car").id
        assert project.get_image("scene.jpg").status == "edited"
    assert labels[0, 0] == background and labels[15, 15] == car
    assert labels[2, 32] == UNLABELED_U8  # __ignore__ stays unlabelled


def _isat(objects: list[dict], name: str = "scene.jpg") -> dict:
    return {
        "info": {"description": "ISAT", "folder": "/data/images", "name": name, "width": W,
                 "height": H, "depth": 3, "note": ""},
        "objects": objects,
    }  # fmt: skip


def test_isat_objects_paint_by_layer(tmp_path: Path) -> None:
    root = _project(tmp_path)
    big = [[2.7, 3.2], [50.9, 3.2], [50.9, 35.8], [2.7, 35.8]]
    small = [[10.5, 10.5], [20.9, 10.1], [15.2, 22.7]]
    objects = [  # listed top layer first: the layer decides, not the order
        {"category": "dog", "group": 2, "segmentation": small, "area": 60.0, "layer": 2.0,
         "bbox": [10, 10, 21, 23], "iscrowd": False, "note": ""},
        {"category": "couch", "group": 1, "segmentation": big, "area": 1500.0, "layer": 1.0,
         "bbox": [2, 3, 51, 36], "iscrowd": False, "note": ""},
        {"category": "cat", "group": 3, "segmentation": [[1, 1], [2, 2]], "area": 0, "layer": 3.0,
         "bbox": [1, 1, 2, 2], "iscrowd": False, "note": ""},
    ]  # fmt: skip
    _write(tmp_path / "isat", "scene.json", _isat(objects))
    with Project.open(root) as project:
        report = run_job(import_into_project(project, "isat", tmp_path / "isat"))
        labels = project.load_labels("scene.jpg")
        dog, couch = project.find_class("dog").id, project.find_class("couch").id
    assert report.written == 1 and "a polygon with 2 points" in report.skipped[0]
    expected = np.full((H, W), UNLABELED_U8, np.uint8)
    for points, value in ((big, couch), (small, dog)):
        canvas = Image.new("L", (W, H), 0)
        ImageDraw.Draw(canvas).polygon([(int(x), int(y)) for x, y in points], outline=1, fill=1)
        expected[np.array(canvas, bool)] = value
    assert np.array_equal(labels, expected)


def test_isat_size_mismatch_is_reported(tmp_path: Path) -> None:
    root = _project(tmp_path)
    document = _isat([{"category": "dog", "segmentation": [[0, 0], [5, 0], [5, 5]], "layer": 1}])
    document["info"]["width"] = 200000
    _write(tmp_path / "isat", "scene.json", document)
    with Project.open(root) as project:
        report = run_job(import_into_project(project, "isat", tmp_path / "isat"))
    assert report.written == 0 and "200000 x 40, the image is 60 x 40" in report.skipped[0]


def test_a_class_added_mid_file_with_id_255_is_still_a_class(tmp_path: Path) -> None:
    root = _project(tmp_path)
    with Project.open(root) as project:
        for number in range(255):  # ids 0..254: the next class gets 255, beyond uint8 maps
            project.add_class(f"c{number}")
    shapes = [
        {"label": "c3", "shape_type": "rectangle", "points": [[0, 0], [59, 19]]},
        {"label": "newcomer", "shape_type": "rectangle", "points": [[0, 20], [59, 39]]},
    ]
    _write(root, "scene.json", {"shapes": shapes, "imagePath": "scene.jpg"})
    with Project.open(root) as project:
        run_job(import_into_project(project, "labelme", root))
        labels = project.load_labels("scene.jpg")
        newcomer, c3 = project.find_class("newcomer").id, project.find_class("c3").id
    assert newcomer == 255 and (labels[20:] == 255).all() and (labels[:20] == c3).all()
    assert labels.dtype == np.uint16
