"""Propose label maps for many image files: a batch job (see :mod:`annotator.progress`).

Each image becomes one palette PNG under the output folder (relative paths mirrored), plus one
``classes.json`` (label index -> name and colour). Unreadable files are listed with the reason
while the rest are processed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from annotator.engine.palette import class_colours
from annotator.engine.proposal import Proposal
from annotator.engine.segmenter import Segmenter
from annotator.errors import ImageReadError, JobCancelled
from annotator.imageio import is_image_file, list_image_files, load_image
from annotator.progress import Job, Progress, ShouldStop, never_stop


@dataclass
class ProposeReport:
    """What a propose run did: written label files and ``(path, reason)`` of failed inputs."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


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
    """Write ``labels`` ``[H, W]`` as a palette PNG (16-bit grayscale beyond 256 labels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if labels.dtype != np.uint8:
        Image.fromarray(labels.astype(np.uint16)).save(path)
        return
    image = Image.fromarray(labels, mode="P")
    flat = [channel for colour in colours for channel in colour]
    image.putpalette(flat + [0] * (768 - len(flat)))
    image.save(path, optimize=False)


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
) -> Job[ProposeReport]:
    """Propose every ``(file, relative)`` in ``items``; yields Progress, returns the report.

    ``write_segments``: also write each zegformer proposal's segments under ``segments/``
    (:func:`annotator.engine.proposers.export.save_segments`)."""
    out_dir = Path(out_dir)
    background = segmenter.config.background_name
    use_background = segmenter.config.background_threshold is not None
    table = class_table(classes, background if use_background else None)
    colours = [tuple(entry["color"]) for entry in table["classes"]]
    report, taken = ProposeReport(), set()
    for done, (path, relative) in enumerate(items):
        if should_stop():
            raise JobCancelled(f"Stopped after {done} of {len(items)} images")
        try:
            proposal = _propose_one(segmenter, path, classes)
        except ImageReadError as error:
            report.failed.append((path, error.reason))
        else:
            target = output_path(out_dir, relative, taken)
            save_label_png(target, proposal.label_map, colours)
            report.written.append(target)
            if write_segments and proposal.segments is not None:
                from annotator.engine.proposers.export import save_segments

                save_segments(out_dir, target.relative_to(out_dir), proposal.segments)
        yield Progress(done + 1, len(items), str(relative))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "classes.json").write_text(json.dumps(table, indent=2) + "\n")
    return report


def _propose_one(segmenter: Segmenter, path: Path, classes: Sequence[str]) -> Proposal:
    if not is_image_file(path):
        raise ImageReadError(path, "not an image file name (.jpg, .png, .tif, ...)")
    segmenter.set_image(load_image(path))
    return segmenter.predict(list(classes))
