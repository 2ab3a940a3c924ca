"""Reconciliation on open: the image table against the folder, the database against the files.

1. Rows whose ``relpath`` is not a plain relative path (``../x``, ``/etc/x``) are dropped and
   reported: nothing outside the project is ever moved in.
2. The folder walk is planned by :func:`_scan.plan_reconcile`: renamed pictures take their row
   (labels, status) along, pictures replaced by another one have their maps set aside.
3. Label files that must move (to follow a picture, or to quarantine) move in two phases through
   ``staging/``, recorded in ``pending_moves`` in the same transaction as the rows, so a process
   killed at any point finishes the moves on the next open (swaps and cycles included).
4. Label files the database does not know, or that are newer than it (a lost or older
   ``project.db`` or WAL), are adopted from their own metadata: classes restored, flags and
   statuses set, each reported in ``list_problems``; a file saved for another picture than the
   one now at its path is set aside, never shown on it.
"""

from __future__ import annotations

import os
import time
from typing import Any

from annotator.errors import LabelFileError, UnsafePathError
from annotator.project import _scan
from annotator.project._atomic import move_atomic, remove_temp_files
from annotator.project._base import LABELS, PROPOSALS
from annotator.project._labelfile import LabelMeta
from annotator.project._maps import LabelMaps
from annotator.project._paths import check_relpath

_MOVING = "//moving/"  # prefix of a row being renamed (no real relpath starts with "/")
_COLUMN = {LABELS: "has_labels", PROPOSALS: "has_proposal"}


class Reconciler(LabelMaps):
    """Bringing the database in line with the folder and the label files on open."""

    def _reconcile(self) -> None:
        """Steps 1-4 of the module docstring (writers only)."""
        self._require_writable()
        self._finish_moves()
        for kind in (LABELS, PROPOSALS):
            remove_temp_files(self.sidecar_path(kind))
        disk = _scan.walk_images(self.root, frozenset({self.sidecar}))
        plan = _scan.plan_reconcile(self.root, self._stored_images(), disk)
        self._apply_plan(plan)
        self._finish_moves()
        for kind in (LABELS, PROPOSALS):
            self._sync_maps(kind)

    def _stored_images(self) -> list[_scan.StoredImage]:
        rows = self._query("SELECT relpath, size, mtime_ns, content_hash, missing FROM images")
        stored, unsafe = [], []
        for r in rows:
            try:
                check_relpath(r["relpath"])
            except UnsafePathError:
                unsafe.append(r["relpath"])
                continue
            stored.append(
                _scan.StoredImage(r["relpath"], r["size"], r["mtime_ns"], r["content_hash"], bool(r["missing"]))
            )  # fmt: skip
        if unsafe:
            self._drop_unsafe_rows(unsafe)
        return stored

    def _drop_unsafe_rows(self, relpaths: list[str]) -> None:
        with self._transaction() as conn:
            conn.executemany("DELETE FROM images WHERE relpath = ?", [(p,) for p in relpaths])
        for relpath in relpaths:
            self._report(
                "",
                f"The project database named an image {relpath!r} outside the project folder; "
                "the entry was removed and no file outside the project was touched. The database "
                "may have been edited by hand or come from someone else.",
            )

    # ------------------------------------------------------------------ the folder walk

    def _apply_plan(self, plan: _scan.ReconcilePlan) -> None:
        moves = self._plan_moves(plan)
        now = time.time()
        with self._transaction() as conn:
            self._update_rows(conn, plan, now)
            conn.executemany(
                "INSERT INTO pending_moves (source, stage, target) VALUES (?, ?, ?)",
                [(src, f"staging/{index}.png", dst) for index, (src, dst, _) in enumerate(moves)],
            )
            if moves:
                conn.execute("UPDATE meta SET value = '1' WHERE key = 'moves_phase'")
            conn.executemany(
                "INSERT INTO problems (at, relpath, message) VALUES (?, ?, ?)",
                [(now, relpath, message) for _, _, (relpath, message) in moves if message],
            )

    def _plan_moves(self, plan: _scan.ReconcilePlan) -> list[tuple[str, str, tuple[str, str]]]:
        """``(source, target, (relpath, problem or ''))`` map moves, relative to the sidecar."""
        moves: list[tuple[str, str, tuple[str, str]]] = []
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for kind in (LABELS, PROPOSALS):
            for old, fact in plan.renames:
                if os.path.lexists(self._map_path(kind, old)):
                    moves.append((f"{kind}/{old}.png", f"{kind}/{fact.relpath}.png", (old, "")))
            for relpath in plan.replaced:
                if os.path.lexists(self._map_path(kind, relpath)):
                    target = f"quarantine/{stamp}/{kind}/{relpath}.png"
                    moves.append(
                        (
                            f"{kind}/{relpath}.png",
                            target,
                            (relpath, _replaced(kind, relpath, target)),
                        )
                    )
        return moves  # fmt: skip

    @staticmethod
    def _update_rows(conn: Any, plan: _scan.ReconcilePlan, now: float) -> None:
        conn.executemany(  # a header unreadable while it was away is read again
            "UPDATE images SET missing = 0, width = NULLIF(width, 0), "
            "height = NULLIF(height, 0) WHERE relpath = ?",
            [(p,) for p in plan.unchanged_back],
        )
        conn.executemany(
            "UPDATE images SET relpath = ? WHERE relpath = ?",
            [(_MOVING + old, old) for old, _ in plan.renames],
        )
        conn.executemany("DELETE FROM images WHERE relpath = ?", [(p,) for p in plan.replaced])
        conn.executemany(
            "UPDATE images SET relpath = ?, size = ?, mtime_ns = ?, width = ?, height = ?, "
            "missing = 0, error = ?, content_hash = CASE ? WHEN '' THEN content_hash ELSE ? END "
            "WHERE relpath = ?",
            [
                (f.relpath, f.size, f.mtime_ns, f.width, f.height, f.error, f.content_hash,
                 f.content_hash, _MOVING + old)
                for old, f in plan.renames
            ],
        )  # fmt: skip
        conn.executemany(
            "UPDATE images SET size = ?, mtime_ns = ?, content_hash = ?, width = ?, height = ?, "
            "error = ?, missing = 0 WHERE relpath = ?",
            [
                (f.size, f.mtime_ns, f.content_hash, f.width, f.height, f.error, f.relpath)
                for f in plan.changed
            ],
        )
        conn.executemany(
            "INSERT INTO images (relpath, size, mtime_ns, content_hash, width, height, error, "
            "added_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*fact, now, now) for fact in plan.added],  # FileFacts in column order
        )
        conn.executemany(
            "UPDATE images SET missing = 1 WHERE relpath = ?", [(p,) for p in plan.vanished]
        )

    def _finish_moves(self) -> None:
        """Carry out ``pending_moves``: every source to its stage, then every stage to its
        target. Each phase is idempotent, so a kill at any point is finished here next time."""
        rows = self._query("SELECT source, stage, target FROM pending_moves ORDER BY seq")
        if not rows:
            return
        if self._meta("moves_phase") == "1":
            for source, stage, _ in rows:
                src, staged = self.sidecar_path(source), self.sidecar_path(stage)
                if os.path.lexists(src) and not os.path.lexists(staged):
                    move_atomic(src, staged)
            with self._transaction() as conn:
                conn.execute("UPDATE meta SET value = '2' WHERE key = 'moves_phase'")
        for _, stage, target in rows:
            move_atomic(self.sidecar_path(stage), self.sidecar_path(target))
        with self._transaction() as conn:
            conn.execute("DELETE FROM pending_moves")
            conn.execute("UPDATE meta SET value = '0' WHERE key = 'moves_phase'")

    # ------------------------------------------------------------------ the label files

    def _sync_maps(self, kind: str) -> None:
        """Make the flags agree with the files (a crash may split them) and adopt the files the
        database does not know or that are newer than its row (module docstring, step 4)."""
        column = _COLUMN[kind]
        files = _scan.list_maps(self.sidecar_path(kind))
        rows = {
            r[0]: r
            for r in self._query(f"SELECT relpath, {column}, updated_at, missing FROM images")
        }
        lost = [p for p, r in rows.items() if r[1] and p not in files]
        if lost:
            with self._transaction() as conn:
                conn.executemany(f"UPDATE images SET {column} = 0 WHERE relpath = ?", [(p,) for p in lost])  # fmt: skip
        for relpath, mtime_ns in sorted(files.items()):
            row = rows.get(relpath)
            if row is None or not row[1] or mtime_ns / 1e9 > row[2]:
                self._adopt(kind, relpath, row, mtime_ns)

    def _adopt(self, kind: str, relpath: str, row: Any, mtime_ns: int) -> None:
        try:
            check_relpath(relpath)
            stored, meta = self._read_map(kind, relpath)
        except UnsafePathError:
            return  # a name no image can have; left alone
        except LabelFileError as error:
            self._quarantine(kind, relpath, error)
            return
        if row is not None and not row["missing"] and self._other_picture(relpath, meta):
            self._set_aside(kind, relpath)
            return
        self._to_current(relpath, stored, meta)  # restores the classes the database lost
        known = row is not None and row[1]
        self._adopt_row(kind, relpath, row, meta, mtime_ns)
        if not known:
            where = (
                ""
                if row is not None and not row["missing"]
                else (" Its image is not in the folder; the labels come back with it.")
            )
            self._report(
                relpath,
                f"The project database did not know the {kind[:-1]} map of {relpath} (the "
                f"database was lost, is an older copy, or a save was interrupted); it was "
                f"recovered from the label file.{where}",
            )

    def _other_picture(self, relpath: str, meta: LabelMeta | None) -> bool:
        """Whether the file says it was saved for another picture than the one at ``relpath``."""
        if meta is None or not meta.image_hash:
            return False
        rows = self._query("SELECT content_hash FROM images WHERE relpath = ?", (relpath,))
        current = (rows[0][0] if rows else "") or self._hash_image(relpath)
        return bool(current) and current != meta.image_hash

    def _set_aside(self, kind: str, relpath: str) -> None:
        target = self._quarantine_path(kind, relpath)
        move_atomic(self._map_path(kind, relpath), target)
        with self._transaction() as conn:
            conn.execute(f"UPDATE images SET {_COLUMN[kind]} = 0 WHERE relpath = ?", (relpath,))
        self._report(relpath, _replaced(kind, relpath, str(target)))

    def _adopt_row(
        self, kind: str, relpath: str, row: Any, meta: LabelMeta | None, mtime_ns: int
    ) -> None:
        status = (meta.status if meta else "") or "edited"
        if kind == PROPOSALS:
            status = "proposed"
        digest = meta.image_hash if meta else ""
        with self._transaction() as conn:
            if row is None:
                conn.execute(
                    "INSERT INTO images (relpath, size, content_hash, status, missing, "
                    "added_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)",
                    (relpath, meta.image_bytes if meta else 0, digest, status, time.time(), 0.0),
                )
            conn.execute(
                f"UPDATE images SET {_COLUMN[kind]} = 1, updated_at = MAX(updated_at, ?), "
                "content_hash = CASE content_hash WHEN '' THEN ? ELSE content_hash END, "
                "status = CASE WHEN status = 'new' OR (status = 'proposed' AND ? != 'proposed') "
                "OR (status = 'edited' AND ? = 'reviewed') THEN ? ELSE status END "
                "WHERE relpath = ?",
                (mtime_ns / 1e9, digest, status, status, status, relpath),
            )


def _replaced(kind: str, relpath: str, target: str) -> str:
    return (
        f"The picture at {relpath} is not the one its {kind[:-1]} map was saved for (the file "
        f"was replaced or edited since, and the picture it showed is not in the folder any "
        f"more). So that they are not shown on another picture, they were moved to {target}; "
        "label the new picture again. If you put the original picture back at this path, copy "
        f"that file back to {kind}/{relpath}.png in the project data folder and open again."
    )
