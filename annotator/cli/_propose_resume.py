"""Resuming ``annotator propose --project P --into-project`` when no ``--out`` folder is given.

The run's settings fingerprint and journal (:class:`~annotator.engine.resume.ResumeState`) live in
the project's sidecar (``<sidecar>/propose/``). Each journal line names the image and a digest of
the proposal stored for it; a rerun with the same fingerprint skips the images whose stored
proposal still has that digest (one proposed again since, e.g. in the app, is proposed again).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotator.engine.resume import ResumeState, source_key

#: Sidecar folder holding the fingerprint and journal of the last ``--into-project`` run.
JOURNAL_FOLDER = "propose"


@dataclass
class StoredProposals(ResumeState):
    """A :class:`ResumeState` whose finished items are proposals stored in ``project``.

    Journal targets are ``RELPATH#DIGEST`` (:func:`annotator.engine.memory.labels_digest` of the
    stored proposal); :meth:`record` takes ``Path(relpath)`` for the image just stored."""

    project: Any = None

    @classmethod
    def open_in(cls, project: Any, settings: dict) -> StoredProposals:
        """The journal of ``project`` for ``settings`` (started over when they differ)."""
        state = cls.open(project.sidecar_path(JOURNAL_FOLDER), settings)
        state.project = project
        return state

    def finished(self, source: Path) -> Path | None:
        entry = self.done.get(source_key(source))
        relpath, _, digest = (entry or "").rpartition("#")
        if not relpath or self._digest(relpath) != digest:
            return None
        return Path(relpath)

    def record(self, source: Path, target: Path) -> None:
        relpath = Path(target).as_posix()
        self.append(source, f"{relpath}#{self._digest(relpath)}")

    def _digest(self, relpath: str) -> str | None:
        from annotator.engine.memory import labels_digest
        from annotator.errors import AnnotatorError

        try:
            proposal = self.project.load_proposal(relpath)
        except (AnnotatorError, OSError, ValueError):
            return None
        return None if proposal is None else labels_digest(proposal)
