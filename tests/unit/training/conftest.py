"""A generated labelled folder (textured regions per class) shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.testing import build_textured_project as build_project

__all__ = ["build_project"]


@pytest.fixture
def labelled_project(tmp_path: Path):
    project = build_project(tmp_path / "scenes", count=14, reviewed=10)
    yield project
    project.close()
