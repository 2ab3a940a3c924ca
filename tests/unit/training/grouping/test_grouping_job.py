"""The folder job: resumable, cancellable, stored in the sidecar; the CLI's --out files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotator.errors import JobCancelled
from annotator.progress import run_job
from annotator.project import Project
from training.grouping import (
    GroupConfig,
    group_folder,
    load_group_map,
    load_grouping,
    merge_groups,
    name_group,
    split_group,
)
from training.grouping.testing import write_group_folder

FAST = GroupConfig(k=3, size=48, steps=4, batch=2, crop=32, pixels_per_image=128)


@pytest.fixture
def project(tmp_path: Path):
    write_group_folder(tmp_path / "scenes", 4, size=48, seed=3)
    project = Project.open(tmp_path / "scenes")
    yield project
    project.close()


def test_groups_are_stored_per_image_at_its_size(project) -> None:
    result = run_job(group_folder(project, None, config=FAST))
    assert sorted(result.images) == sorted(r.relpath for r in project.list_images())
    assert [g.id for g in result.groups] == [0, 1, 2]
    total = 0
    for relpath in result.images:
        groups = load_group_map(project, relpath)
        assert groups.dtype == np.uint8 and groups.shape == (48, 48) and groups.max() < 3
        total += groups.size
        for info in result.groups:
            assert (relpath in info.images) == ((groups == info.id).mean() >= FAST.min_share)
    assert sum(g.pixels for g in result.groups) == total
    assert load_grouping(project).to_json() == result.to_json()


def test_cancelled_job_resumes_without_recomputing_features(project, monkeypatch) -> None:
    calls = {"n": 0}
    original = project.load_image

    def counting(relpath):
        calls["n"] += 1
        return original(relpath)

    monkeypatch.setattr(project, "load_image", counting)
    steps = iter(range(10**6))
    with pytest.raises(JobCancelled, match="run it again"):
        run_job(group_folder(project, None, config=FAST, should_stop=lambda: next(steps) > 2))
    assert calls["n"] == 3  # three images read before the stop
    run_job(group_folder(project, None, config=FAST))
    assert calls["n"] == 4  # only the missing image was read
    head = (Path(project.sidecar) / "grouping" / "head.pt").stat().st_mtime_ns
    again = run_job(group_folder(project, None, 2, FAST))  # another K reuses features and head
    assert calls["n"] == 4 and len(again.groups) == 2
    assert (Path(project.sidecar) / "grouping" / "head.pt").stat().st_mtime_ns == head


def test_name_group_writes_proposals_only_where_the_group_is(project) -> None:
    result = run_job(group_folder(project, None, config=FAST))
    stone = project.add_class("stone")
    group = min(result.groups, key=lambda g: len(g.images))
    written = run_job(name_group(project, group.id, stone.id))
    assert sorted(written) == sorted(group.images)
    for relpath in result.images:
        proposal = project.load_proposal(relpath)
        if relpath not in group.images:
            assert proposal is None
            continue
        expected = load_group_map(project, relpath) == group.id
        assert np.array_equal(proposal == stone.id, expected)
        assert project.get_image(relpath).status == "proposed"


def test_merge_then_split_keeps_every_pixel_in_a_group(project) -> None:
    result = run_job(group_folder(project, None, config=FAST))
    merged = merge_groups(project, 0, [1])
    assert [g.id for g in merged.groups] == [0, 2]
    maps = {r: load_group_map(project, r) for r in result.images}
    assert all(not (m == 1).any() for m in maps.values())
    before = sum(g.pixels for g in merged.groups)
    split = split_group(project, 0)
    assert sorted(g.id for g in split.groups) == [0, 1, 2]
    assert sum(g.pixels for g in split.groups) == before
    assert split.group(1).pixels > 0 and split.group(0).pixels > 0


def test_cli_out_mirrors_paths_with_uint8_maps_and_groups_json(project, tmp_path, capsys) -> None:
    from annotator.cli import main

    root = project.root
    project.close()
    out = tmp_path / "out"
    code = main(["group", str(root), "--k", "3", "--steps", "3", "--size", "48",
                 "--out", str(out), "--json", "--no-download"])  # fmt: skip
    assert code == 0
    groups = json.loads(capsys.readouterr().out)
    assert [g["id"] for g in groups] == [0, 1, 2]
    data = json.loads((out / "groups.json").read_text())
    assert {"id", "pixels", "images", "suggested_names"} <= set(data["groups"][0])
    for relpath in data["images"]:
        png = out / Path(relpath).with_suffix(".png")
        with Image.open(png) as image:
            assert image.mode == "L" and image.size == (48, 48)
            assert np.asarray(image).max() < 3
    assert (out / "part1").is_dir()


def test_groups_are_matched_to_labelled_classes_by_hungarian_matching(tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, left, right in (("a.png", (200, 40, 40), (40, 60, 210)),
                              ("c.png", (40, 190, 60), (40, 190, 60)),
                              ("d.png", (40, 190, 60), (40, 190, 60))):  # fmt: skip
        image = np.empty((40, 48, 3), np.uint8)
        image[:, :24], image[:, 24:] = left, right
        Image.fromarray(image).save(folder / name)
    with Project.open(folder) as project:
        leaf = project.add_class("leaf")
        project.save_labels("c.png", np.full((40, 48), leaf.id, np.uint8))
        result = run_job(group_folder(project, None, 3, GroupConfig(k=3, size=48, steps=0)))
        green = next(g for g in result.groups if "d.png" in g.images)
        assert green.matched_class == leaf.id and green.suggested_names[0] == "leaf"
        assert [g.matched_class for g in result.groups if g is not green] == [None, None]
