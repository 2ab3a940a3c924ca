"""``annotator.wording.plural``: counts in messages agree with their noun."""

from __future__ import annotations

import pytest

from annotator.wording import plural


@pytest.mark.parametrize(
    ("count", "noun", "expected"),
    [
        (1, "image", "1 image"),
        (0, "image", "0 images"),
        (2, "image", "2 images"),
        (1, "label map", "1 label map"),
        (3, "label map", "3 label maps"),
        (2, "class", "2 classes"),
        (2, "box", "2 boxes"),
        (2, "patch", "2 patches"),
        (2, "category", "2 categories"),
        (2, "key", "2 keys"),
        (-1, "point", "-1 points"),
    ],
)
def test_plural(count: int, noun: str, expected: str) -> None:
    assert plural(count, noun) == expected


def test_an_irregular_plural_is_given() -> None:
    assert plural(2, "child", "children") == "2 children"
    assert plural(1, "child", "children") == "1 child"
