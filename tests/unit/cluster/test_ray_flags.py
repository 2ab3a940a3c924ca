"""``--ray`` without Ray installed says how to install it; the Ray flags are checked up front."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from annotator.cli import main


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import ray`` fails, as without the ``cluster`` extra."""
    monkeypatch.setitem(sys.modules, "ray", None)


def test_ray_without_ray_installed_says_how_to_install_it(no_ray, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    code = main(["propose", str(tmp_path), "--classes", "cat", "--ray"])
    assert code == 2
    assert "pip install 'annotator[cluster]'" in capsys.readouterr().err


def test_project_runs_check_for_ray_too(no_ray, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    code = main(["propose", "--project", str(tmp_path), "--into-project", "--ray", "auto"])
    assert code == 2
    assert "pip install 'annotator[cluster]'" in capsys.readouterr().err
    assert not (tmp_path / ".annotator").exists()  # refused before opening the project


def test_the_api_raises_a_typed_error_without_ray(no_ray) -> None:  # noqa: ANN001
    from annotator.cluster.ray_propose import RayUnavailableError, ray_available, require_ray

    assert not ray_available()
    with pytest.raises(RayUnavailableError, match=r"pip install 'annotator\[cluster\]'"):
        require_ray()


def test_a_path_after_a_bare_ray_flag_is_not_taken_for_an_address(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["propose", "--classes", "cat", "--ray", str(tmp_path)]) == 2
    assert "write --ray local PATH" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--workers", "2"], "--workers needs --ray"), (["--ray", "--workers", "0"], "at least 1")],
)
def test_bad_worker_counts_are_refused(tmp_path: Path, capsys, flags: list, message: str) -> None:  # noqa: ANN001
    assert main(["propose", str(tmp_path), "--classes", "cat", *flags]) == 2
    assert message in capsys.readouterr().err
