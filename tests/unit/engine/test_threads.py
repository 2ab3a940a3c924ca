"""Work split among CPU threads (annotator.engine._threads) gives what one torch operation
gives: rows of a matrix product and heads of attention are independent."""

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


def test_split_products_and_attention_equal_one_operation(three_threads: None) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 300, 64, generator=generator)
    weight, bias = torch.randn(96, 64, generator=generator), torch.randn(96, generator=generator)
    q, k, v = torch.randn(3, 1, 6, 300, 16, generator=generator).unbind(0)
    mask = torch.randn(300, 300, generator=generator)
    with torch.inference_mode():
        assert _threads.parts_for(x, 600) == 3
        split = _threads.linear(x, weight, bias)
        product = _threads.add_product(torch.ones(600, 96), x.reshape(600, 64), weight)
        attended = _threads.attention(q, k, v, mask)
    torch.testing.assert_close(split, torch.nn.functional.linear(x, weight, bias))
    torch.testing.assert_close(product, 1 + x.reshape(600, 64) @ weight.T)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(attended, expected)


def test_no_split_with_autograd_few_rows_or_one_thread(three_threads: None) -> None:
    x = torch.zeros(1000, 8)
    assert _threads.parts_for(x, 1000) == 1  # autograd on: outputs must stay differentiable
    with torch.no_grad():
        assert _threads.parts_for(x, _threads.MIN_ROWS - 1) == 1
        torch.set_num_threads(1)
        assert _threads.parts_for(x, 1000) == 1


def test_an_error_in_any_part_reaches_the_caller(three_threads: None) -> None:
    def part(first: int, last: int) -> None:
        if first > 0:
            raise ValueError(f"part {first}-{last} failed")

    with pytest.raises(ValueError, match="part 3-6 failed"):
        _threads.run_parts(part, 9, 3)
    assert torch.get_num_threads() == 3  # restored after the failure
