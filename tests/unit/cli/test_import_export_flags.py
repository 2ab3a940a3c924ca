"""``annotator import`` / ``export`` flags for files from other tools, typed as a user would."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from annotator.cli import main
from annotator.project import UNLABELED_U8, Project


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    Image.new("RGB", (8, 6), (10, 20, 30)).save(root / "one.png")
    return root


def _boxes(tmp_path: Path) -> Path:
    document = {
        "images": [{"id": 1, "file_name": "one.png"}],
        "categories": [{"id": 5, "name": "person"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 5, "bbox": [0, 0, 4, 3]}],
    }
    (tmp_path / "boxes.json").write_text(json.dumps(document))
    return tmp_path / "boxes.json"


def test_detection_only_import_says_so_and_boxes_as_masks_opts_in(tmp_path: Path, capsys) -> None:
    root, boxes = _folder(tmp_path), _boxes(tmp_path)
    assert main(["import", str(root), str(boxes), "--format", "coco"]) == 1
    err = capsys.readouterr().err
    assert "No masks in this file" in err and "--boxes-as-masks" in err and "Traceback" not in err
    args = ["import", str(root), str(boxes), "--format", "coco", "--boxes-as-masks"]
    assert main([*args, "--status", "edited", "--fill-unlabeled", "_background_"]) == 0
    with Project.open(root) as project:
        labels = project.load_labels("one.png")
        person, background = project.find_class("person").id, project.find_class("_background_").id
        assert project.get_image("one.png").status == "edited"
    assert (labels[:3, :4] == person).all() and (labels[3:] == background).all()


def test_malformed_file_gives_a_message_not_a_traceback(tmp_path: Path, capsys) -> None:
    root = _folder(tmp_path)
    (tmp_path / "bad.json").write_text(
        '{"images": [{"id": 1}], "annotations": 7, "categories": []}'
    )
    assert main(["import", str(root), str(tmp_path / "bad.json"), "--format", "coco"]) == 1
    err = capsys.readouterr().err
    assert "not a COCO file" in err and "Traceback" not in err
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "one.json").write_text('{"shapes": [{"label": "x", "points": [[NaN, 1]]}]}')
    assert main(["import", str(root), str(tmp_path / "lm"), "--format", "labelme"]) == 1
    out = capsys.readouterr().out
    assert "not a finite number" in out and "nothing stored" in out


def test_labelme_export_and_line_width(tmp_path: Path, capsys) -> None:
    root = _folder(tmp_path)
    (tmp_path / "lm").mkdir()
    line = {"label": "wire", "shape_type": "line", "points": [[0, 3], [7, 3]]}
    (tmp_path / "lm" / "one.json").write_text(
        json.dumps({"shapes": [line], "imagePath": "one.png"})
    )
    args = ["import", str(root), str(tmp_path / "lm"), "--format", "labelme", "--line-width", "1"]
    assert main(args) == 0
    with Project.open(root) as project:
        labels = project.load_labels("one.png")
        assert project.get_image("one.png").status == "reviewed"
    assert (labels[3] != UNLABELED_U8).all() and (labels[[0, 1, 2, 4, 5]] == UNLABELED_U8).all()
    out = tmp_path / "back"
    assert main(["export", str(root), "--format", "labelme", "--out", str(out)]) == 0
    document = json.loads((out / "one.json").read_text())
    assert document["imagePath"] == "one.png" and (out / "one.png").is_file()
    assert [s["label"] for s in document["shapes"]] == ["wire"]
    assert (out / ".annotator-export").is_file()


def test_coco_export_without_images_lists_exif_rotated_ones(tmp_path: Path, capsys) -> None:
    root = tmp_path / "phone"
    root.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (8, 6)).save(root / "p.jpg", exif=exif)
    with Project.open(root) as project:
        road = project.add_class("road")
        project.save_labels("p.jpg", np.full((8, 6), road.id, np.uint8))
    out = tmp_path / "c"
    assert main(["export", str(root), "--format", "coco", "--out", str(out), "--no-images"]) == 0
    assert "p.jpg is EXIF-rotated" in capsys.readouterr().out
    assert not (out / "images").exists()


def test_wrong_options_are_refused_before_anything_is_imported(tmp_path: Path) -> None:
    import pytest

    from annotator.errors import FormatError
    from annotator.formats import ImportOptions, import_into_project

    root = _folder(tmp_path)
    with Project.open(root) as project:
        with pytest.raises(FormatError, match="--status must be edited or reviewed"):
            import_into_project(project, "coco", _boxes(tmp_path), ImportOptions(status="new"))
        with pytest.raises(FormatError, match="--line-width must be 1..1000"):
            import_into_project(project, "labelme", tmp_path, ImportOptions(line_width=0))
