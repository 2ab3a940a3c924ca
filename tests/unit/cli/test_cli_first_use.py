"""The command line as a new user meets it: typos, --help, models list/info, eval's class names,
and the desktop app's start-up check when Qt cannot open a window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotator.cli import main


def test_mistyped_command_suggests_the_right_one(capsys) -> None:  # noqa: ANN001
    assert main(["propse", "photos/"]) == 2
    assert capsys.readouterr().err.strip() == (
        "annotator: unknown command 'propse' (did you mean propose?)"
    )
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "'frobnicate' is neither a command nor a folder" in err and "propose" in err


def test_help_lists_demo(capsys) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "--demo" in out and "annotator [FOLDER] [--demo]" in out


def test_models_list_reads_the_table_without_torch() -> None:
    code = (
        "import sys; from annotator.cli import _model_table as t; rows = t.list_sources(); "
        "print(len(rows), t.supports_dense_heads('ViT-B-16'), 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    import open_clip

    assert out == [str(len(open_clip.list_pretrained())), "True", "False"]


def test_models_list_shows_estimated_sizes(capsys) -> None:  # noqa: ANN001
    assert main(["models", "list"]) == 0
    rows = {tuple(line.split()[:2]): line for line in capsys.readouterr().out.splitlines()[1:-1]}
    # ViT-B-16 checkpoints are ~600 MB (float32); ViT-L-14 ~1.7 GB.
    assert "~566.8 MB" in rows[("ViT-B-16", "openai")]
    assert "~1.6 GB" in rows[("ViT-L-14", "openai")]


def test_models_info_detects_being_offline(monkeypatch, capsys) -> None:  # noqa: ANN001
    from annotator.cli import _model_table

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("ANNOTATOR_OFFLINE", raising=False)
    monkeypatch.setattr(
        _model_table, "network_problem", lambda: "cannot resolve huggingface.co (no DNS)"
    )
    assert main(["models", "info"]) == 0
    out = capsys.readouterr().out
    assert "offline: yes (cannot resolve huggingface.co (no DNS); downloads will fail)" in out
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["models", "info"]) == 0
    assert "offline: yes (HF_HUB_OFFLINE or ANNOTATOR_OFFLINE is set" in capsys.readouterr().out


def test_network_problem_names_the_host() -> None:
    from annotator.cli._model_table import network_problem

    # ".invalid" never resolves (RFC 2606).
    assert (
        network_problem(("weights.invalid",), timeout=1.0)
        == "cannot resolve weights.invalid (no DNS)"
    )


def _masks(folder: Path, maps: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True)
    for name, labels in maps.items():
        Image.fromarray(labels).save(folder / name)


def _gt_and_pred(tmp_path: Path) -> tuple[Path, Path]:
    truth = np.zeros((20, 20), np.uint8)
    truth[:, 10:] = 1  # left: cat (0), right: grass (1)
    pred = truth.copy()
    pred[:, 10:15] = 0  # half the grass predicted as cat
    _masks(tmp_path / "gt", {"a.png": truth})
    _masks(tmp_path / "pred", {"a.png": pred})
    return tmp_path / "gt", tmp_path / "pred"


def test_eval_reads_the_classes_json_propose_wrote(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    gt, pred = _gt_and_pred(tmp_path)
    table = {"classes": [{"index": 0, "name": "cat"}, {"index": 1, "name": "grass"}]}
    (pred / "classes.json").write_text(json.dumps(table))
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--unseen", "grass"]) == 0
    out = capsys.readouterr().out
    # cat: 100 true / (200 truth + 100 wrongly predicted) -> 66.67; grass: 100 / 200 -> 50.00
    assert "cat     66.67  100.00  seen" in out and "grass   50.00   50.00  unseen" in out
    assert "hIoU 57.14" in out


def test_eval_without_class_names_names_the_classes_flag(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    gt, pred = _gt_and_pred(tmp_path)
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--unseen", "tree"]) == 1
    err = capsys.readouterr().err
    assert "--classes FILE" in err and "classes.json" in err
    names = tmp_path / "names.txt"
    names.write_text("cat\ngrass\n")
    args = ["eval", "--gt", str(gt), "--pred", str(pred), "--classes", str(names)]
    assert main([*args, "--unseen", "tree"]) == 1
    assert "Unseen classes ['tree'] are not among the classes ['cat', 'grass']" in (
        capsys.readouterr().err
    )
    assert main([*args, "--unseen", "grass"]) == 0


# -- the desktop app's start-up check ---------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb check is Linux-only")
def test_no_display_is_said_plainly() -> None:
    from annotator.gui._platform import NO_DISPLAY, check_platform

    assert check_platform({}) == NO_DISPLAY
    assert check_platform({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert check_platform({"WAYLAND_DISPLAY": "wayland-0"}) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb check is Linux-only")
def test_missing_xcb_libraries_print_the_apt_get_line(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from annotator.gui import _platform

    fake = tmp_path / "ldd"  # what ldd prints on a fresh Debian for Qt's xcb plugin
    fake.write_text(
        "#!/bin/sh\necho '\tlibxcb-cursor.so.0 => /lib/libxcb-cursor.so.0 (0x1)'\n"
        "echo '\tlibxcb-icccm.so.4 => not found'\necho '\tlibxcb-keysyms.so.1 => not found'\n"
        "echo '\tlibxcb-icccm.so.4 => not found'\necho '\tlibfoo.so.9 => not found'\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    monkeypatch.setattr(_platform, "xcb_plugin", lambda: plugin)
    message = _platform.check_platform({"DISPLAY": ":0"})
    assert message is not None
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1, libfoo.so.9" in message
    assert "    sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1\n" in message
    assert "Install the packages that provide: libfoo.so.9." in message


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb check is Linux-only")
def test_app_without_display_exits_1_with_the_reason(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    env["ANNOTATOR_CONFIG_DIR"] = str(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "annotator", "--demo"], capture_output=True, text=True, env=env,
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 1
    assert "the desktop app needs a display, and there is none" in run.stderr
    assert not (tmp_path / "data" / "demo").exists()  # nothing copied before the check


def test_train_without_weights_says_so_once_briefly(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from tests.unit.training.conftest import build_project

    folder = tmp_path / "project"
    build_project(folder, count=4, reviewed=4, size=32).close()
    # Default engine (ViT-B-16/openai): no weights on this machine, so filter features only.
    assert main(["train", str(folder), "--rounds", "1", "--steps", "10"]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "filter features only" in line]
    assert len(notes) == 1 and notes[0].startswith(
        "annotator train: no CLIP weights are present, so it uses filter features only ("
    )
    assert "Cache folder" not in err and "--pretrained PATH" not in err
