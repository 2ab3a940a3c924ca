"""Propose label maps for many image files: a batch job (see :mod:`annotator.progress`).

Each image becomes one palette PNG under the output folder (relative paths mirrored), plus one
``classes.json`` (label index -> name and colour). Unreadable files are listed with the reason
while the rest are processed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from annotator.engine.palette import class_colours
from annotator.engine.proposal import Proposal
from annotator.engine.resume import (
    Failed,
    OutcomeSource,
    ResumeState,
    config_settings,
    local_outcomes,
    write_atomically,
    write_in_order,
)
from annotator.errors import ImageReadError
from annotator.imageio import is_image_file, list_image_files, load_image
from annotator.progress import Job, ShouldStop, never_stop

if TYPE_CHECKING:  # torch: only the model code needs it, not the file listing
    from annotator.engine.segmenter import Segmenter


@dataclass
class ProposeReport:
    """What a propose run did: written label files and ``(path, reason)`` of failed inputs."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    #: Images a previous run with the same settings had written (kept, not proposed again).
    skipped: int = 0
    #: True when the folder held a previous run with other settings (everything proposed again).
    restarted: bool = False


@dataclass(frozen=True)
class FileResult:
    """What one image's proposal leaves in an output folder: the label map ``[H, W]`` (uint8,
    uint16 beyond 255 labels; indices into the classes, background last) and, for zegformer with
    ``write_segments``, its segments."""

    label_map: np.ndarray
    segments: object = None


def collect_inputs(paths: Sequence[str | Path]) -> list[tuple[Path, Path]]:
    """``(file, relative output stem)`` for every image named or found under a named folder."""
    items: list[tuple[Path, Path]] = []
    for path in map(Path, paths):
        if path.is_dir():
            items += [(path / rel, Path(rel)) for rel in list_image_files(path)]
        else:
            items.append((path, Path(path.name)))
    return items


def output_path(out_dir: Path, relative: Path, taken: set[Path]) -> Path:
    """``out_dir/relative`` with a ``.png`` suffix, keeping the full name if two inputs collide."""
    target = out_dir / relative.with_suffix(".png")
    if target in taken:
        target = out_dir / relative.parent / (relative.name + ".png")
    taken.add(target)
    return target


def save_label_png(path: Path, labels: np.ndarray, colours: list[tuple[int, int, int]]) -> None:
    """Write ``labels`` ``[H, W]`` as a palette PNG (16-bit grayscale beyond 256 labels).

    Atomically (temporary name, then rename): a killed run leaves the whole file or none."""
    buffer = io.BytesIO()
    if labels.dtype != np.uint8:
        Image.fromarray(labels.astype(np.uint16)).save(buffer, format="PNG")
    else:
        image = Image.fromarray(labels, mode="P")
        flat = [channel for colour in colours for channel in colour]
        image.putpalette(flat + [0] * (768 - len(flat)))
        image.save(buffer, format="PNG", optimize=False)
    write_atomically(path, buffer.getvalue())


def class_table(classes: Sequence[str], background: str | None) -> dict:
    """The ``classes.json`` document, in the same schema as ``annotator export --format masks``.

    ``{"classes": [{"index", "name", "synonyms", "color"}], "unlabeled": 255}``, so a folder of
    proposals imports with ``annotator import FOLDER --format masks OUT``. A class string
    "tv; monitor" becomes name "tv" with synonyms ["monitor"]; the background class (if any) is
    black and comes last.
    """
    colours = [list(c) for c in class_colours(len(classes))]
    entries = [
        _class_entry(i, text, colour)
        for i, (text, colour) in enumerate(zip(classes, colours, strict=True))
    ]
    if background is not None:
        entries.append(_class_entry(len(classes), background, [0, 0, 0]))
    return {"classes": entries, "unlabeled": 255}


def _class_entry(index: int, text: str, colour: list[int]) -> dict:
    name, *synonyms = [part.strip() for part in text.split(";") if part.strip()] or [text]
    return {"index": index, "name": name, "synonyms": synonyms, "color": colour}


def propose_files(
    segmenter: Segmenter,
    items: Sequence[tuple[Path, Path]],
    classes: Sequence[str],
    out_dir: str | Path,
    should_stop: ShouldStop = never_stop,
    write_segments: bool = False,
    resume: bool = True,
) -> Job[ProposeReport]:
    """Propose every ``(file, relative)`` in ``items``; yields Progress, returns the report.

    ``write_segments``: also write each zegformer proposal's segments under ``segments/``
    (:func:`annotator.engine.proposers.export.save_segments`). ``resume``: skip the images a
    previous run with the same settings wrote (:mod:`annotator.engine.resume`)."""

    def compute(path: Path) -> FileResult | Failed:
        return propose_file(segmenter, path, classes, write_segments)

    return write_proposals(
        local_outcomes(compute), segmenter.config, items, classes, out_dir,
        should_stop, write_segments, resume,
    )  # fmt: skip


def propose_file(
    segmenter: Segmenter, path: Path, classes: Sequence[str], keep_segments: bool = False
) -> FileResult | Failed:
    """One image's :class:`FileResult`, or :class:`Failed` when it cannot be read."""
    try:
        proposal = _propose_one(segmenter, path, classes)
    except ImageReadError as error:
        return Failed(error.reason)
    return FileResult(proposal.label_map, proposal.segments if keep_segments else None)


def files_settings(config: object, classes: Sequence[str], write_segments: bool) -> dict:
    """The settings fingerprinted for resuming a ``propose_files`` output folder."""
    return {
        "kind": "files",
        "engine": config_settings(config),
        "classes": list(classes),
        "write_segments": write_segments,
    }


def write_proposals(
    outcomes: OutcomeSource, config: object, items: Sequence[tuple[Path, Path]],
    classes: Sequence[str], out_dir: str | Path, should_stop: ShouldStop = never_stop,
    write_segments: bool = False, resume: bool = True,
) -> Job[ProposeReport]:  # fmt: skip
    """Write the :class:`FileResult` s ``outcomes`` computes (here or on workers) for ``items``,
    in order, as :func:`propose_files` does; yields Progress, returns the report."""
    out_dir = Path(out_dir)
    use_background = config.background_threshold is not None
    table = class_table(classes, config.background_name if use_background else None)
    colours = [tuple(entry["color"]) for entry in table["classes"]]
    state = (
        ResumeState.open(out_dir, files_settings(config, classes, write_segments))
        if resume
        else None
    )
    report = ProposeReport(restarted=state is not None and state.restarted)

    def write(path: Path, relative: Path, result: FileResult, taken: set[Path]) -> Path:
        target = output_path(out_dir, relative, taken)
        save_label_png(target, result.label_map, colours)
        report.written.append(target)
        if write_segments and result.segments is not None:
            from annotator.engine.proposers.export import save_segments

            save_segments(out_dir, target.relative_to(out_dir), result.segments)
        return target

    counts = yield from write_in_order(items, outcomes, write, state, should_stop)
    report.failed, report.skipped = counts.failed, counts.skipped
    write_atomically(out_dir / "classes.json", (json.dumps(table, indent=2) + "\n").encode())
    return report


def _propose_one(segmenter: Segmenter, path: Path, classes: Sequence[str]) -> Proposal:
    if not is_image_file(path):
        raise ImageReadError(path, "not an image file name (.jpg, .png, .tif, ...)")
    segmenter.set_image(load_image(path))
    return segmenter.predict(list(classes))
