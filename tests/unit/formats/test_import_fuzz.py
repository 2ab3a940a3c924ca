"""Every importer fed malformed files (hypothesis): no uncaught exception (only a typed
``AnnotatorError`` for a file that cannot be imported at all), memory bounded by the image size
(tracemalloc peak), labels already in the project unchanged."""

from __future__ import annotations

import base64
import io
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from annotator.errors import AnnotatorError
from annotator.formats import ImportOptions, import_into_project
from annotator.progress import run_job
from annotator.project import Project

W, H = 24, 16
PEAK_LIMIT = 48 * 2**20  # the images are 24 x 16: any real allocation blow-up is far above

junk = st.one_of(
    st.none(), st.booleans(), st.text(max_size=4), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.just([]), st.just({}),
)  # fmt: skip
number = st.one_of(
    st.integers(-5, 40), st.floats(-5, 40), st.sampled_from([1e12, -1e12, 200000, 2**63, 1e308]),
    st.floats(allow_nan=True, allow_infinity=True), junk,
)  # fmt: skip
size = st.one_of(st.sampled_from([W, H, 0, -1, 200000, 2**40]), number)
ident = st.one_of(st.integers(0, 3), st.sampled_from(["1", "2", "a"]), junk)
name = st.one_of(st.sampled_from(["road", "car", "__ignore__", "", " "]), junk)
pair = st.one_of(st.lists(number, min_size=2, max_size=2), st.lists(number, max_size=3), junk)
points = st.one_of(st.lists(pair, max_size=6), junk)


def _png(width: int, height: int, mode: str = "L") -> str:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), 255).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


HUGE_MASK = _png(3000, 3000)  # far larger than the image: refused from its header
pngs = st.one_of(
    st.builds(_png, st.integers(1, 30), st.integers(1, 30), st.sampled_from(["L", "1", "RGBA", "I;16"])),
    st.just("huge").map(lambda _: HUGE_MASK), st.text(max_size=8), junk,
)  # fmt: skip
rle = st.fixed_dictionaries({
    "size": st.one_of(st.just([H, W]), st.lists(size, max_size=3), junk),
    "counts": st.one_of(st.text(max_size=12), st.lists(st.integers(-3, 400), max_size=6), st.just([0, H * W]), junk),
})  # fmt: skip
segmentation = st.one_of(st.lists(st.lists(number, max_size=10), max_size=3), rle, st.lists(number, max_size=8), junk)  # fmt: skip
coco_image = st.fixed_dictionaries(
    {"id": ident, "file_name": st.one_of(st.sampled_from(["x.png", "keep.png", "none.png"]), junk)},
    optional={"width": size, "height": size, "annotator_status": junk},
)  # fmt: skip
coco_annotation = st.fixed_dictionaries(
    {"image_id": ident, "category_id": ident},
    optional={"id": ident, "segmentation": segmentation, "area": number, "bbox": st.lists(number, max_size=5), "iscrowd": junk},
)  # fmt: skip
coco_category = st.fixed_dictionaries(
    {"id": ident, "name": name},
    optional={"supercategory": junk, "color": st.lists(number, max_size=4), "synonyms": st.lists(junk, max_size=2), "novel": junk},
)  # fmt: skip
coco = st.one_of(
    st.fixed_dictionaries({
        "images": st.lists(coco_image, max_size=4), "annotations": st.lists(coco_annotation, max_size=6),
        "categories": st.lists(coco_category, max_size=4),
    }),
    junk, st.lists(junk, max_size=2),
)  # fmt: skip
shape_kind = st.one_of(
    st.sampled_from(["polygon", "rectangle", "circle", "line", "linestrip", "point", "mask", "rotation", "quadrilateral", "oriented_rectangle", "cuboid"]),
    junk,
)  # fmt: skip
labelme_shape = st.fixed_dictionaries(
    {"label": name, "points": points},
    optional={"shape_type": shape_kind, "mask": pngs},
)  # fmt: skip
labelme = st.one_of(
    st.fixed_dictionaries(
        {"shapes": st.one_of(st.lists(labelme_shape, max_size=5), junk)},
        optional={"imagePath": st.one_of(st.sampled_from(["x.png", "keep.png", "../../etc/passwd", "new.png"]), junk),
                  "imageHeight": size, "imageWidth": size, "imageData": st.one_of(pngs, junk),
                  "annotator": st.one_of(junk, st.fixed_dictionaries({"status": junk, "classes": junk}))},
    ),
    junk,
)  # fmt: skip
isat = st.one_of(
    st.fixed_dictionaries({
        "info": st.one_of(st.fixed_dictionaries({"name": st.one_of(st.just("x.png"), junk)}, optional={"width": size, "height": size}), junk),
        "objects": st.one_of(st.lists(st.fixed_dictionaries({"category": name}, optional={"segmentation": points, "layer": number}), max_size=4), junk),
    }),
    junk,
)  # fmt: skip
classes_json = st.one_of(
    st.fixed_dictionaries(
        {"classes": st.one_of(st.lists(st.fixed_dictionaries({"index": number, "name": name}), max_size=3), junk)},
        optional={"unlabeled": st.one_of(st.sampled_from([255, 10**9, -1, 65535]), number), "statuses": junk},
    ),
    junk,
)  # fmt: skip
mask_png = st.tuples(st.sampled_from([(W, H), (3, 2), "huge"]), st.sampled_from(["L", "P", "I;16", "RGB", "1"]), st.integers(0, 70000))  # fmt: skip


def _huge_png() -> bytes:
    """A 6000 x 6000 mask (small once compressed): its size must be refused from the header."""
    buffer = io.BytesIO()
    Image.new("L", (6000, 6000), 1).save(buffer, format="PNG")
    return buffer.getvalue()


HUGE_PNG = _huge_png()


@pytest.fixture(scope="module")
def fuzz_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, np.ndarray]]:
    root = tmp_path_factory.mktemp("fuzz") / "imgs"
    root.mkdir()
    for image in ("x.png", "keep.png"):
        Image.new("RGB", (W, H), (10, 20, 30)).save(root / image)
    with Project.open(root) as project:
        road = project.add_class("road")
        keep = np.full((H, W), 255, np.uint8)
        keep[:8] = road.id
        project.save_labels("keep.png", keep, status="reviewed")
    yield root, keep


def _check_import(root: Path, fmt: str, source: Path, keep: np.ndarray, options: ImportOptions) -> None:  # fmt: skip
    with Project.open(root) as project:
        tracemalloc.start()
        try:
            run_job(import_into_project(project, fmt, source, options))
        except AnnotatorError as error:
            assert str(error)  # a typed error with a message, for a file that is no use at all
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert peak < PEAK_LIMIT, f"{peak / 2**20:.0f} MiB for a {W} x {H} image"
        assert np.array_equal(project.load_labels("keep.png"), keep)
        assert project.get_image("keep.png").status == "reviewed"
        if project.get_image("x.png").has_labels:
            assert (project.load_labels("x.png") != project.unlabeled_value).any(), (
                "empty map stored"
            )
            project.delete_labels("x.png")
        for extra in ("new.png", "passwd.png"):
            assert not (root.parent / extra).exists(), "wrote outside the project folder"


FUZZ = settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
OPTIONS = st.builds(ImportOptions, fill_unlabeled=st.sampled_from([None, "_background_"]), boxes_as_masks=st.booleans())  # fmt: skip


@FUZZ
@given(document=coco, options=OPTIONS)
def test_coco_import_survives_malformed_files(fuzz_project, document, options) -> None:
    root, keep = fuzz_project
    path = root.parent / "in.json"
    path.write_text(json.dumps(document))
    _check_import(root, "coco", path, keep, options)


@FUZZ
@given(document=labelme, options=OPTIONS)
def test_labelme_import_survives_malformed_files(fuzz_project, document, options) -> None:
    root, keep = fuzz_project
    folder = root.parent / "labelme"
    folder.mkdir(exist_ok=True)
    (folder / "x.json").write_text(json.dumps(document))
    _check_import(root, "labelme", folder, keep, options)
    for added in root.glob("*"):  # an embedded image it added: remove for the next example
        if added.name not in ("x.png", "keep.png", ".annotator"):
            added.unlink()


@FUZZ
@given(document=isat, options=OPTIONS)
def test_isat_import_survives_malformed_files(fuzz_project, document, options) -> None:
    root, keep = fuzz_project
    folder = root.parent / "isat"
    folder.mkdir(exist_ok=True)
    (folder / "x.json").write_text(json.dumps(document))
    _check_import(root, "isat", folder, keep, options)


@FUZZ
@given(document=classes_json, mask=mask_png, fmt=st.sampled_from(["masks", "voc"]))
def test_index_mask_imports_survive_malformed_files(fuzz_project, document, mask, fmt) -> None:
    root, keep = fuzz_project
    folder = root.parent / "masks"
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    (folder / "classes.json").write_text(json.dumps(document))
    (dims, mode, value) = mask
    fill = value % 256 if mode in ("L", "P", "RGB", "1") else value
    if dims == "huge":
        (folder / "masks" / "x.png").write_bytes(HUGE_PNG)
    else:
        Image.new(mode, dims, fill if mode != "RGB" else (fill, 0, 0)).save(
            folder / "masks" / "x.png"
        )
    _check_import(root, fmt, folder if fmt == "masks" else folder / "masks", keep, ImportOptions())
