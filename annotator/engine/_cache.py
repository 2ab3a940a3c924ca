"""A least-recently-used cache bounded by the bytes its values hold."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class ByteLRU(Generic[V]):
    """Keeps the most recently used values whose sizes (``size_of(value)``) sum to ``max_bytes``.

    A value larger than the whole budget is still kept (alone), so the current image always stays.
    """

    def __init__(self, max_bytes: int, size_of: Callable[[V], int]) -> None:
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self.used_bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: Hashable, value: V) -> None:
        if key in self._items:
            self.used_bytes -= self._items.pop(key)[1]
        size = self._size_of(value)
        self._items[key] = (value, size)
        self.used_bytes += size
        while self.used_bytes > self.max_bytes and len(self._items) > 1:
            _, (_, dropped) = self._items.popitem(last=False)
            self.used_bytes -= dropped

    def clear(self) -> None:
        self._items.clear()
        self.used_bytes = 0
