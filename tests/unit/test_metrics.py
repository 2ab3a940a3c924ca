"""Metrics on a case small enough to compute by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotator.errors import FormatError
from annotator.metrics import ConfusionMatrix, compute_metrics, evaluate_folders, evaluate_project
from annotator.progress import run_job
from annotator.project import Project

TRUTH = np.array([[0, 0, 1], [1, 2, 255]])
PREDICTION = np.array([[0, 1, 1], [1, 2, 0]])
NAMES = ["a", "b", "c"]


def test_hand_computed_case() -> None:
    confusion = ConfusionMatrix(3)
    confusion.update(TRUTH, PREDICTION)
    assert confusion.matrix[:, :3].tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]
    report = compute_metrics(confusion.matrix, NAMES, unseen=["c"])
    assert report.iou == pytest.approx([1 / 2, 2 / 3, 1.0])
    assert report.miou == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert report.pixel_accuracy == pytest.approx(4 / 5)
    assert report.mean_accuracy == pytest.approx((1 / 2 + 1 + 1) / 3)
    seen = (1 / 2 + 2 / 3) / 2
    assert report.seen_miou == pytest.approx(seen) and report.unseen_miou == pytest.approx(1.0)
    assert report.hiou == pytest.approx(2 * seen * 1.0 / (seen + 1.0))
    table = report.format_table()
    assert "mIoU 72.22" in table and "hIoU 73.68" in table


def test_missing_predictions_are_misses_and_absent_classes_do_not_count() -> None:
    confusion = ConfusionMatrix(4)
    confusion.update(np.array([[0, 0, 1, 1]]), np.array([[0, 255, 1, 1]]))
    report = compute_metrics(confusion.matrix, ["a", "b", "c", "d"])
    assert report.iou == [pytest.approx(0.5), 1.0, None, None]
    assert report.miou == pytest.approx(0.75) and report.pixel_accuracy == pytest.approx(0.75)
    assert report.hiou is None


def test_one_matrix_over_the_data_set_not_a_mean_of_images() -> None:
    confusion = ConfusionMatrix(2)
    confusion.update(np.array([[0, 0, 0, 1]]), np.array([[0, 0, 0, 0]]))  # per image: mIoU .375
    confusion.update(np.array([[1]]), np.array([[1]]))  # per image: mIoU 1
    report = compute_metrics(confusion.matrix, ["a", "b"])
    assert report.iou == pytest.approx([3 / 4, 1 / 2])  # pooled: not (0.375 + 1) / 2


def test_mismatched_sizes_are_an_error() -> None:
    with pytest.raises(FormatError, match="differ in size"):
        ConfusionMatrix(2).update(np.zeros((2, 2)), np.zeros((2, 3)))


def test_folders(tmp_path: Path) -> None:
    for folder, values in (("gt", TRUTH), ("pred", PREDICTION)):
        (tmp_path / folder / "sub").mkdir(parents=True)
        Image.fromarray(values.astype(np.uint8)).save(tmp_path / folder / "sub" / "x.png")
    report = evaluate_folders(tmp_path / "gt", tmp_path / "pred", NAMES, unseen=["c"])
    assert report.miou == pytest.approx((1 / 2 + 2 / 3 + 1) / 3) and report.images == 1
    unnamed = evaluate_folders(tmp_path / "gt", tmp_path / "pred")
    assert unnamed.class_names == ["0", "1", "2"]
    (tmp_path / "gt" / "y.png").write_bytes((tmp_path / "gt" / "sub" / "x.png").read_bytes())
    with pytest.raises(FormatError, match="1 truth masks have no prediction"):
        evaluate_folders(tmp_path / "gt", tmp_path / "pred")


def test_project_with_a_plugged_in_predictor(tmp_path: Path) -> None:
    Image.new("RGB", (3, 2)).save(tmp_path / "x.png")
    with Project.open(tmp_path) as project:
        a, gone, b, c = (project.add_class(n) for n in ("a", "gone", "b", "c"))
        project.delete_class(gone.id)
        project.set_novel(c.id, True)
        ids = np.array([a.id, b.id, c.id, 255])
        project.save_labels("x.png", ids[np.where(TRUTH == 255, 3, TRUTH)].astype(np.uint8))
        project.save_proposal("x.png", ids[PREDICTION].astype(np.uint8), 0.5)
        report = run_job(evaluate_project(project))
        assert report.iou == pytest.approx([1 / 2, 2 / 3, 1.0]) and report.unseen == ["c"]
        perfect = run_job(evaluate_project(project, lambda p, r: p.load_labels(r.relpath)))
        assert perfect.miou == 1.0 and perfect.images == 1


def test_unknown_unseen_names_are_an_error() -> None:
    with pytest.raises(FormatError, match=r"Unseen classes \['dog'\] are not among"):
        compute_metrics(np.zeros((2, 3), np.int64), ["a", "b"], unseen=["dog"])
