"""Typed errors for what a user can cause.

Every message says what happened and what to do next; the GUI and the CLI show ``str(error)``
as it is, so write messages for people, not for developers.
"""

from __future__ import annotations

from pathlib import Path


class AnnotatorError(Exception):
    """Base class of every error a user can cause and recover from."""


class ImageReadError(AnnotatorError):
    """An image file could not be read (missing, empty, truncated, not an image, too large)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot read image {self.path}: {reason}")


class WeightsUnavailableError(AnnotatorError):
    """Model weights are missing, partial or corrupt; the message names the fixes."""


class ProjectError(AnnotatorError):
    """A project folder or its sidecar store cannot be used as asked."""


class ProjectClosedError(ProjectError):
    """The project was closed (another folder was opened, the app is closing) while work on it
    was still under way; that work is dropped, nothing stored is lost."""


class ProjectLockedError(ProjectError):
    """Another process holds the project open for writing."""


class LabelFileError(ProjectError):
    """A stored label map is unreadable or does not match its image."""


class FormatError(AnnotatorError):
    """An import or export could not be done (bad source file, unknown format, ...)."""


class JobCancelled(AnnotatorError):
    """A batch job stopped because the user asked it to."""


class ProjectDamagedError(ProjectError):
    """The project database is damaged (SQLite: "database disk image is malformed")."""


class DiskFullError(ProjectError):
    """The disk holding the project is full; the message says what was not saved."""


class ProjectReadOnlyError(ProjectError):
    """The project's data folder cannot be written; it can still be opened read-only."""


class ProjectVersionError(ProjectError):
    """The project was written by a newer version of annotator."""


class UnsafePathError(ProjectError):
    """A path named by the project's data would leave the project or pass through a link."""
