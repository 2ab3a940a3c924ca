"""The project store: an image folder plus a crash-safe sidecar of labels, proposals and classes.

See ``docs/interfaces.md`` ("Project store") for the contract the GUI, formats and training use.
"""

from annotator.project._scan import EXPORT_MARKER
from annotator.project.records import (
    STATUSES,
    UNLABELED_U8,
    UNLABELED_U16,
    ClassInfo,
    ImageRecord,
    Problem,
)
from annotator.project.store import Project

__all__ = [
    "EXPORT_MARKER",
    "STATUSES",
    "UNLABELED_U8",
    "UNLABELED_U16",
    "ClassInfo",
    "ImageRecord",
    "Problem",
    "Project",
]
