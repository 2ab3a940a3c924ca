"""``annotator train --nproc 2``: two gloo processes on the CPU give the one-process result.

One two-process run (module fixture, a subprocess as a user would start it) serves several
assertions. To also prove the restart (``--max-restarts 1``) without a third run, rank 1 of that
run fails once, at step 30 of round 2 (``planted_failure/sitecustomize.py``): the agent restarts
both processes, which resume from the checkpoint; the result must still equal the one-process
reference, which runs in this process through ``--nproc 1``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from annotator.cli import main
from annotator.project import Project
from training.testing import build_textured_project

TINY = ["--model", "annotator-tiny-vit", "--pretrained", "none", "--short-side", "64"]
TRAIN = ["--rounds", "2", "--steps", "40", "--json", *TINY]
#: Held-out metrics may differ only by float rounding (the gradient of each step is summed over
#: the two halves of the batch in another order): a few pixels' argmax of 2 x 48 x 48 held-out
#: pixels, each worth < 0.001 of a class IoU. Measured: identical (benchmarks/cluster_train.py).
METRIC_TOLERANCE = 0.005
ROOT = Path(__file__).resolve().parents[3]
SITE = Path(__file__).with_name("planted_failure")


def _cli(folder: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "annotator", "train", str(folder), *TRAIN, *extra]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=240, cwd=ROOT, env=env or os.environ
    )


def _planted(**extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SITE), str(ROOT)]), **extra}


def _one_process(folder: Path) -> dict:
    """``--nproc 1`` in this process: trains as today, launches nothing."""
    from annotator.cluster import distributed

    def no_launch(*args, **kwargs):
        raise AssertionError("--nproc 1 must not launch processes")

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setattr(distributed, "launch_local", no_launch)
        assert main(["train", str(folder), *TRAIN, "--nproc", "1"]) == 0
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The same project trained by one process and by two (interrupted once, restarted)."""
    base = tmp_path_factory.mktemp("ddp")
    build_textured_project(base / "one", count=8, reviewed=6, size=48).close()
    shutil.copytree(base / "one", base / "two")
    shutil.copytree(base / "one", base / "broken")
    env = _planted(ANNOTATOR_TEST_FAIL_ONCE=str(base / "failed-once"), ANNOTATOR_DIST_TIMEOUT="120")
    two = _cli(base / "two", "--nproc", "2", "--max-restarts", "1", env=env)
    return {"base": base, "two": two, "one": _one_process(base / "one")}


def test_two_processes_match_one_process(runs) -> None:
    two, one = runs["two"], runs["one"]
    assert two.returncode == 0, two.stderr
    payload = json.loads(two.stdout)  # rank 0 alone prints: exactly one JSON document
    assert payload["rounds"] == one["rounds"] == ["v0001", "v0002"]
    assert payload["train_images"] == one["train_images"]
    assert payload["holdout_images"] == one["holdout_images"]
    assert payload["pseudo_pixels"] == one["pseudo_pixels"]
    for key in ("miou", "pixel_accuracy"):
        assert abs(payload["after"][key] - one["after"][key]) <= METRIC_TOLERANCE
    for ours, reference in zip(payload["after"]["iou"], one["after"]["iou"], strict=True):
        assert (ours is None) == (reference is None)  # None: class absent from the held-out set
        assert ours is None or abs(ours - reference) <= METRIC_TOLERANCE
    assert payload["after"]["miou"] > payload["before"]["miou"] + 0.3
    # The versions' weights agree up to float rounding.
    from training.models import version_store

    for vid in payload["rounds"]:
        heads = []
        for name in ("one", "two"):
            with Project.open(runs["base"] / name, read_only=True) as project:
                heads.append(version_store(project).load_head(vid).state_dict())
        for key, tensor in heads[0].items():
            assert np.allclose(tensor, heads[1][key], atol=1e-4), key


def test_a_restart_resumes_from_the_checkpoint(runs) -> None:
    two = runs["two"]
    assert two.returncode == 0, two.stderr
    assert "planted one-time failure on rank 1" in two.stderr
    assert (
        "restart 1 resumed from the checkpoint: human: 5 images; round 1: saved as v0001; "
        "pseudo-1: 2 images; round 2: fit from step 25"
    ) in two.stderr
    assert not (runs["base"] / "two" / ".annotator" / "training-checkpoint").exists()


def test_the_version_loads_and_proposes_in_one_process(runs) -> None:
    from annotator.engine import EngineConfig, create_segmenter
    from training import load_active_adapter
    from training.dataset import class_prompts

    assert runs["two"].returncode == 0, runs["two"].stderr
    segmenter = create_segmenter(
        EngineConfig(model="annotator-tiny-vit", pretrained=None, short_side=64, device="cpu")
    )
    with Project.open(runs["base"] / "two", read_only=True) as project:
        relpath = json.loads(runs["two"].stdout)["holdout_images"][0]
        segmenter.set_image(project.load_image(relpath))
        _, prompts = class_prompts(project)
        proposal = segmenter.predict(prompts, adapter=load_active_adapter(project)).label_map
        truth = project.load_labels(relpath)
    assert proposal.shape == truth.shape
    assert (proposal == truth).mean() > 0.85  # the random tiny ViT alone is near chance


def test_only_rank_zero_wrote_and_the_project_is_unlocked(runs) -> None:
    assert runs["two"].returncode == 0, runs["two"].stderr
    models = runs["base"] / "two" / ".annotator" / "models"
    assert sorted(p.name for p in models.iterdir() if p.is_dir()) == ["v0001", "v0002"]
    with Project.open(runs["base"] / "two") as project:  # writable again: the lock is free
        assert project.read_only is False


def test_a_failing_rank_fails_the_run_with_a_message(runs) -> None:
    env = _planted(ANNOTATOR_TEST_PLANT_FAILURE="1", ANNOTATOR_DIST_TIMEOUT="300")
    started = time.perf_counter()
    broken = _cli(runs["base"] / "broken", "--nproc", "2", env=env)
    elapsed = time.perf_counter() - started
    assert broken.returncode == 1
    assert "planted failure on rank 1" in broken.stderr
    assert "training process 1 of 2 failed" in broken.stderr
    assert "the active model version is unchanged" in broken.stderr
    assert broken.stdout == ""
    # Rank 0, left waiting in a collective, is ended by the agent, not by the 300 s timeout.
    assert elapsed < 150
    assert not (runs["base"] / "broken" / ".annotator" / "models").exists() or not any(
        (runs["base"] / "broken" / ".annotator" / "models").iterdir()
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--nproc", "0"], "--nproc must be at least 1"),
        (["--nproc", "2", "--list"], "--list and --use run in one process"),
        (["--nproc", "2", "--max-restarts", "-1"], "--max-restarts must be at least 0"),
    ],
)
def test_bad_distributed_requests_are_refused(tmp_path, capsys, extra, message) -> None:
    assert main(["train", str(tmp_path), *extra]) == 2
    assert message in capsys.readouterr().err


def test_under_torchrun_nproc_is_refused(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", str(tmp_path), "--nproc", "2"]) == 2
    assert "under torchrun leave them out" in capsys.readouterr().err
