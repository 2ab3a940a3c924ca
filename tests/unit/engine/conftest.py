"""Shared fixtures of the engine tests."""

from __future__ import annotations

import pytest

from annotator.engine.segmenter import Segmenter
from tests.unit.engine.helpers import tiny_segmenter


@pytest.fixture(scope="module")
def tiny() -> Segmenter:
    return tiny_segmenter()
