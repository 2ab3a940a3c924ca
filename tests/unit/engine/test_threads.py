"""Work split among CPU threads (annotator.engine._threads): every row once, errors reach the
caller, torch's thread count restored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from annotator.engine import _threads


@pytest.fixture
def three_threads() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(3)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("count, parts", [(10, 3), (2, 3), (7, 1), (9, 4), (20, 99)])
def test_bounds_cover_every_row_once(count: int, parts: int) -> None:
    ranges = _threads.bounds(count, parts)
    assert [row for a, b in ranges for row in range(a, b)] == list(range(count))
    assert len(ranges) == min(count, parts, _threads.MAX_PARTS)


def test_parts_cover_the_rows_and_an_error_in_any_reaches_the_caller(three_threads: None) -> None:
    def part(first: int, last: int) -> None:
        if first > 0:
            raise ValueError(f"part {first}-{last} failed")

    seen = []
    _threads.run_parts(lambda first, last: seen.extend(range(first, last)), 9, 3)
    assert sorted(seen) == list(range(9))
    with pytest.raises(ValueError, match="part 3-6 failed"):
        _threads.run_parts(part, 9, 3)
    assert torch.get_num_threads() == 3  # restored after the failure
