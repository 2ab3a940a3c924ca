"""The label map being edited, with unlimited, memory-bounded undo and redo (no Qt).

An edit records only the tiles it touched: for each ``TILE x TILE`` block it changed, the block's
pixels before and after. A brush stroke on a 12000 x 9000 image therefore costs a few blocks, not
two copies of the whole map. The stack keeps as many edits as fit in ``max_bytes`` and forgets the
oldest first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from annotator.gui._labelops import Rect, unlabeled_value

TILE = 256
DEFAULT_UNDO_BYTES = 512 * 1024 * 1024


@dataclass
class _Patch:
    rect: Rect
    before: np.ndarray
    after: np.ndarray


@dataclass
class Edit:
    """One undoable step: the changed blocks, and a name for the menu ("Brush", "Fill", ...)."""

    name: str
    patches: list[_Patch] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(p.before.nbytes + p.after.nbytes for p in self.patches)

    @property
    def rect(self) -> Rect | None:
        bounds: Rect | None = None
        for patch in self.patches:
            bounds = patch.rect.union(bounds)
        return bounds


class LabelDocument:
    """A ``[H, W]`` label map of class ids (``uint8``/``uint16``, max value = unlabeled) plus undo.

    Change it only through :meth:`begin` / :meth:`write` / :meth:`end` (or :meth:`apply`), so every
    change is undoable and every listener hears which rectangle changed.
    """

    def __init__(self, labels: np.ndarray, max_bytes: int = DEFAULT_UNDO_BYTES) -> None:
        self.labels = labels
        self.unlabeled = unlabeled_value(labels.dtype)
        self.max_bytes = max_bytes
        self.revision = 0
        #: True while a long edit (a banded accept) is open: tools and undo must wait.
        self.busy = False
        self._undo: list[Edit] = []
        self._redo: list[Edit] = []
        self._open: Edit | None = None
        self._before: dict[tuple[int, int], np.ndarray] = {}
        self._listeners: list[Callable[[Rect], None]] = []

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape  # type: ignore[return-value]

    def add_listener(self, callback: Callable[[Rect], None]) -> None:
        """``callback(rect)`` runs after every change, with the rectangle that changed."""
        if callback not in self._listeners:
            self._listeners.append(callback)

    def _notify(self, rect: Rect | None) -> None:
        if rect is None or rect.empty:
            return
        self.revision += 1
        for callback in self._listeners:
            callback(rect)

    # -- editing -------------------------------------------------------------------------------

    def begin(self, name: str) -> None:
        """Start an edit; writes until :meth:`end` undo as one step."""
        if self._open is not None:
            self.end()
        self._open = Edit(name)
        self._before = {}

    def write(self, rect: Rect, mask: np.ndarray, value: int | np.ndarray) -> None:
        """Set ``labels[rect][mask] = value``; ``value`` is a class id or an array of rect's shape."""
        if self._open is None:
            raise RuntimeError("write() outside begin()/end()")
        if rect.empty or not mask.any():
            return
        self._capture(rect, mask)
        target = self.labels[rect.slices]
        # copyto with where= avoids materialising index arrays (matters on 100 Mpx maps).
        source = value if np.isscalar(value) else np.asarray(value)
        np.copyto(target, source, where=mask, casting="unsafe")
        self._notify(rect)

    def settle(self, above_row: int) -> None:
        """Turn the captured tiles lying wholly above ``above_row`` into patches now (a long edit
        that moves down the map will not touch them again), spreading :meth:`end`'s work."""
        if self._open is None:
            return
        for key in [k for k in self._before if (k[0] + 1) * TILE <= above_row]:
            self._settle_tile(self._open, key)

    def _settle_tile(self, edit: Edit, key: tuple[int, int]) -> None:
        before = self._before.pop(key)
        rect = self._tile_rect(key[1], key[0])
        after = self.labels[rect.slices]
        if not np.array_equal(before, after):
            edit.patches.append(_Patch(rect, before, after.copy()))

    def end(self) -> Edit | None:
        """Close the open edit; push it on the undo stack if it changed anything."""
        edit, self._open = self._open, None
        if edit is None:
            return None
        for key in list(self._before):
            self._settle_tile(edit, key)
        self._before = {}
        if not edit.patches:
            return None
        self._undo.append(edit)
        self._redo.clear()
        self._trim()
        return edit

    def apply(self, name: str, rect: Rect, mask: np.ndarray, value: int | np.ndarray) -> bool:
        """One-shot edit; returns whether anything changed."""
        self.begin(name)
        self.write(rect, mask, value)
        return self.end() is not None

    def replace_all(self, name: str, labels: np.ndarray) -> bool:
        """Replace the whole map by ``labels`` (same shape) as one undoable edit."""
        height, width = self.shape
        changed = labels != self.labels
        return self.apply(name, Rect(0, 0, width, height), changed, labels)

    def reset(self, labels: np.ndarray | None) -> None:
        """Replace the content from outside (the store rewrote the map): no undo, history cleared.
        ``None`` clears every pixel to unlabeled."""
        self._open = None
        self._before = {}
        self._undo.clear()
        self._redo.clear()
        self.labels[...] = self.unlabeled if labels is None else labels
        height, width = self.shape
        self._notify(Rect(0, 0, width, height))

    # -- undo / redo ---------------------------------------------------------------------------

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_name(self) -> str:
        return self._undo[-1].name if self._undo else ""

    @property
    def redo_name(self) -> str:
        return self._redo[-1].name if self._redo else ""

    def undo(self) -> Rect | None:
        if self._open is not None:
            self.end()
        if not self._undo:
            return None
        edit = self._undo.pop()
        for patch in edit.patches:
            self.labels[patch.rect.slices] = patch.before
        self._redo.append(edit)
        self._notify(edit.rect)
        return edit.rect

    def redo(self) -> Rect | None:
        if not self._redo:
            return None
        edit = self._redo.pop()
        for patch in edit.patches:
            self.labels[patch.rect.slices] = patch.after
        self._undo.append(edit)
        self._notify(edit.rect)
        return edit.rect

    @property
    def undo_bytes(self) -> int:
        return sum(e.nbytes for e in self._undo) + sum(e.nbytes for e in self._redo)

    def _trim(self) -> None:
        total = self.undo_bytes
        while total > self.max_bytes and len(self._undo) > 1:
            total -= self._undo.pop(0).nbytes

    # -- tiles ---------------------------------------------------------------------------------

    def _tile_rect(self, tx: int, ty: int) -> Rect:
        height, width = self.shape
        return Rect(tx * TILE, ty * TILE, (tx + 1) * TILE, (ty + 1) * TILE).clip(width, height)

    def _capture(self, rect: Rect, mask: np.ndarray) -> None:
        """Keep the "before" pixels of every tile that ``mask`` (rect-shaped) will change."""
        for ty in range(rect.y0 // TILE, (rect.y1 - 1) // TILE + 1):
            for tx in range(rect.x0 // TILE, (rect.x1 - 1) // TILE + 1):
                if (ty, tx) in self._before:
                    continue
                tile = self._tile_rect(tx, ty)
                rows = slice(max(tile.y0 - rect.y0, 0), tile.y1 - rect.y0)
                cols = slice(max(tile.x0 - rect.x0, 0), tile.x1 - rect.x0)
                local = mask[rows, cols]
                if local.any():
                    self._before[(ty, tx)] = self.labels[tile.slices].copy()
