"""Import and export of label maps: COCO JSON, Pascal-VOC, plain index masks, labelme /
X-AnyLabeling JSON, ISAT JSON (import).

Every function here is a batch job (a generator yielding :class:`annotator.progress.Progress`,
taking ``should_stop``; its return value is a :class:`TransferReport`). All of them read and write
through :class:`annotator.project.Project`; none imports Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from annotator.errors import FormatError
from annotator.formats._common import ExportOptions, ImportOptions, TransferReport
from annotator.progress import Job, ShouldStop, never_stop
from annotator.project import Project

EXPORT_FORMATS = ("coco", "voc", "masks", "labelme")
IMPORT_FORMATS = ("voc", "coco", "labelme", "masks", "isat")


def _exporter(name: str) -> Callable[..., Job[TransferReport]]:
    from annotator.formats import coco, labelme_export, masks, voc

    table = {
        "coco": coco.export_coco,
        "voc": voc.export_voc,
        "masks": masks.export_masks,
        "labelme": labelme_export.export_labelme,
    }
    if name not in table:
        raise FormatError(
            f"Unknown export format {name!r}; choose one of {', '.join(EXPORT_FORMATS)}."
        )
    return table[name]


def _importer(name: str) -> Callable[..., Job[TransferReport]]:
    from annotator.formats import coco, isat, labelme, masks, voc

    table = {
        "voc": voc.import_voc,
        "coco": coco.import_coco,
        "labelme": labelme.import_labelme,
        "masks": masks.import_masks,
        "isat": isat.import_isat,
    }
    if name not in table:
        raise FormatError(
            f"Unknown import format {name!r}; choose one of {', '.join(IMPORT_FORMATS)}."
        )
    return table[name]


def export_project(
    project: Project,
    fmt: str,
    out: str | Path,
    options: ExportOptions | None = None,
    should_stop: ShouldStop = never_stop,
) -> Job[TransferReport]:
    """Export the project's human labels as ``fmt`` (one of :data:`EXPORT_FORMATS`) to ``out``.
    Every file is written to a temporary name and renamed; each output folder gets the marker
    file ``.annotator-export`` (:data:`annotator.formats._output.EXPORT_MARKER`)."""
    return _exporter(fmt)(project, Path(out), options or ExportOptions(), should_stop)


def import_into_project(
    project: Project,
    fmt: str,
    source: str | Path,
    options: ImportOptions | None = None,
    should_stop: ShouldStop = never_stop,
) -> Job[TransferReport]:
    """Import labels from ``source`` as human labels (status "reviewed" unless
    ``options.status`` or the file says otherwise). Malformed entries are skipped with their
    reason in ``report.skipped``; a file that cannot be imported at all raises
    :class:`annotator.errors.FormatError` before anything is stored."""
    from annotator.formats._common import import_status

    options = options or ImportOptions()
    import_status(options)  # a wrong status is refused before anything is imported
    if not 1 <= options.line_width <= 1000 or not 0 <= options.point_radius <= 1000:
        raise FormatError("--line-width must be 1..1000 and --point-radius 0..1000 pixels.")
    return _importer(fmt)(project, Path(source), options, should_stop)


__all__ = [
    "EXPORT_FORMATS", "IMPORT_FORMATS", "ExportOptions", "ImportOptions", "TransferReport",
    "export_project", "import_into_project",
]  # fmt: skip
