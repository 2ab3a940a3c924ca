"""Class operations of :class:`~annotator.project.Project`: the id -> class table.

Class ids are stable and never reused: renaming rewrites nothing; merging and deleting record an
alias (applied whenever a map is read) in one transaction and then rewrite the stored maps one
atomic file at a time, so a crash half way through still reads correctly. A class the database
lost (an older or rebuilt ``project.db``) is restored with its old id from the label files.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Iterable
from typing import Any

from annotator.errors import ProjectError
from annotator.project._base import ProjectBase
from annotator.project._palette import default_class_color
from annotator.project.records import UNLABELED_U16, ClassInfo

MAX_CLASS_ID = UNLABELED_U16 - 1


def _class_info(row: Any) -> ClassInfo:
    return ClassInfo(
        row["id"], row["name"], tuple(json.loads(row["synonyms"])),
        tuple(json.loads(row["color"])), bool(row["novel"]), row["sort_order"],
    )  # fmt: skip


def clean_synonyms(synonyms: Iterable[str]) -> list[str]:
    if isinstance(synonyms, str):
        synonyms = synonyms.split(";")
    return [s.strip() for s in synonyms if s.strip()]


class ClassOps(ProjectBase):
    """The class table: list, add, rename, recolour, reorder, merge, delete, restore."""

    def list_classes(self) -> list[ClassInfo]:
        """Classes in display order."""
        rows = self._query("SELECT * FROM classes ORDER BY sort_order, id")
        return [_class_info(row) for row in rows]

    def get_class(self, class_id: int) -> ClassInfo:
        rows = self._query("SELECT * FROM classes WHERE id = ?", (int(class_id),))
        if not rows:
            raise ProjectError(f"There is no class with id {class_id} in {self.root}.")
        return _class_info(rows[0])

    def find_class(self, name: str) -> ClassInfo | None:
        """The class called ``name`` (case-insensitive, surrounding spaces ignored), if any."""
        key = name.strip().casefold()
        return next((c for c in self.list_classes() if c.name.casefold() == key), None)

    def _check_name(self, name: str, keep_id: int | None = None) -> str:
        clean = name.strip()
        if not clean or ";" in clean:
            raise ProjectError(
                f"{name!r} cannot be a class name: it must be non-empty, without ';'."
            )
        existing = self.find_class(clean)
        if existing is not None and existing.id != keep_id:
            raise ProjectError(
                f"A class called {existing.name!r} already exists; choose another name."
            )
        return clean

    def add_class(
        self,
        name: str,
        synonyms: Iterable[str] = (),
        color: tuple[int, int, int] | None = None,
        novel: bool = False,
    ) -> ClassInfo:
        """Add a class at the end of the list; its id is the next never-used id."""
        clean = self._check_name(name)
        with self._transaction() as conn:
            class_id = int(
                conn.execute("SELECT value FROM meta WHERE key='next_class_id'").fetchone()[0]
            )
            if class_id > MAX_CLASS_ID:
                raise ProjectError(f"The project has used all {MAX_CLASS_ID + 1} class ids.")
            rgb = tuple(int(v) for v in (color or default_class_color(class_id)))
            _insert_class(conn, class_id, clean, clean_synonyms(synonyms), rgb, novel)
        self._luts.clear()
        return self.get_class(class_id)

    def _restore_class(self, class_id: int, described: dict[str, Any] | None) -> ClassInfo:
        """Put back class ``class_id`` as a label file describes it (``None``: a file of an
        older version that names no class: a placeholder name to rename)."""
        described = described or {}
        name = str(described.get("name") or f"class {class_id} (recovered)").replace(";", ",")
        if not name.strip() or self.find_class(name) is not None:
            name = f"{name.strip() or 'class'} (recovered id {class_id})"
        color = described.get("color") or default_class_color(class_id)
        with self._transaction() as conn:
            _insert_class(
                conn, class_id, name.strip(), clean_synonyms(described.get("synonyms") or ()),
                tuple(int(v) for v in list(color)[:3]), bool(described.get("novel", False)),
            )  # fmt: skip
        self._luts.clear()
        return self.get_class(class_id)

    def _update_class(self, class_id: int, column: str, value: Any) -> None:
        self.get_class(class_id)
        with self._transaction() as conn:
            conn.execute(f"UPDATE classes SET {column} = ? WHERE id = ?", (value, int(class_id)))

    def rename_class(self, class_id: int, name: str) -> None:
        """Rename a class; label maps hold ids, so nothing else changes."""
        self._update_class(class_id, "name", self._check_name(name, keep_id=class_id))

    def set_synonyms(self, class_id: int, synonyms: Iterable[str]) -> None:
        self._update_class(class_id, "synonyms", json.dumps(clean_synonyms(synonyms)))

    def set_class_color(self, class_id: int, color: tuple[int, int, int]) -> None:
        self._update_class(class_id, "color", json.dumps([int(v) for v in color]))

    def set_novel(self, class_id: int, novel: bool) -> None:
        """Mark a class unseen (``True``) or seen by the trained model, for seen/unseen metrics."""
        self._update_class(class_id, "novel", int(novel))

    def reorder_classes(self, class_ids: list[int]) -> None:
        """Set the display order; ``class_ids`` must name every class once."""
        current = sorted(c.id for c in self.list_classes())
        if sorted(class_ids) != current:
            raise ProjectError(f"reorder_classes needs every class id once: {current}.")
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE classes SET sort_order = ? WHERE id = ?",
                [(order, int(cid)) for order, cid in enumerate(class_ids)],
            )

    def merge_classes(self, source_id: int, target_id: int) -> None:
        """Relabel every ``source_id`` pixel (labels and proposals) as ``target_id``; the source
        class goes away."""
        if int(source_id) == int(target_id):
            raise ProjectError(
                "A class cannot be merged into itself; choose two different classes."
            )
        self.get_class(target_id)
        self._retire_class(source_id, int(target_id))

    def delete_class(self, class_id: int) -> None:
        """Delete a class; its pixels become unlabeled in labels and proposals."""
        self._retire_class(class_id, None)

    def _retire_class(self, class_id: int, replacement: int | None) -> None:
        class_id = int(self.get_class(class_id).id)
        with self._transaction() as conn:
            conn.execute(
                "UPDATE class_alias SET new_id = ? WHERE new_id = ?", (replacement, class_id)
            )
            conn.execute(
                "INSERT OR REPLACE INTO class_alias VALUES (?, ?)", (class_id, replacement)
            )
            conn.execute("DELETE FROM classes WHERE id = ?", (class_id,))
        self._luts.clear()
        self._rewrite_maps_with(class_id)  # fmt: skip

    @abc.abstractmethod
    def _rewrite_maps_with(self, class_id: int) -> None:
        """Rewrite every stored map that holds ``class_id`` through the alias table (``LabelMaps``)."""


def _insert_class(
    conn: Any, class_id: int, name: str, synonyms: list[str], rgb: tuple[int, ...], novel: bool
) -> None:
    """Insert a class row at the end of the display order; ``next_class_id`` moves past it."""
    order = conn.execute("SELECT COALESCE(MAX(sort_order) + 1, 0) FROM classes").fetchone()[0]
    conn.execute(
        "INSERT INTO classes VALUES (?, ?, ?, ?, ?, ?)",
        (class_id, name, json.dumps(synonyms), json.dumps(list(rgb)), int(novel), order),
    )
    conn.execute(
        "UPDATE meta SET value = MAX(CAST(value AS INTEGER), ?) WHERE key = 'next_class_id'",
        (class_id + 1,),
    )
