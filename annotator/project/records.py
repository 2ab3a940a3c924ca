"""Plain records the project store hands out (immutable snapshots of database rows)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

#: Review states of an image, in the order a labelling session moves through them.
STATUSES: tuple[str, ...] = ("new", "proposed", "edited", "reviewed")

#: Pixel value meaning "not labelled" in ``uint8`` label maps (class ids 0..254).
UNLABELED_U8 = 255
#: Pixel value meaning "not labelled" in ``uint16`` label maps (class ids 0..65534).
UNLABELED_U16 = 65535


@dataclass(frozen=True)
class ImageRecord:
    """One image of the project. ``relpath`` is POSIX, relative to the project root.

    ``width``/``height`` are display sizes (EXIF orientation applied; 0 when the header is
    unreadable, then ``error`` says why). Opening a folder reads the headers of only the first
    few images, so a record from :meth:`Project.list_images` may not know them yet (``known_size`` is ``None``): the first
    access to ``width``/``height``/``size`` then reads the file's header (never its pixels) and
    the project stores it. ``content_hash`` is ``''`` until the store needs it (labels, a
    proposal or a status saved; a possible rename). ``has_labels``: human labels are stored;
    ``has_proposal``: a model proposal is stored. ``updated_at`` is a Unix time.
    """

    relpath: str
    known_size: tuple[int, int] | None
    content_hash: str
    status: str
    error: str | None
    mean_confidence: float | None
    updated_at: float
    has_labels: bool = False
    has_proposal: bool = False
    #: ``relpath -> (width, height)`` from the header, for a record whose size is not known yet.
    read_size: Callable[[str], tuple[int, int]] | None = field(
        default=None, repr=False, compare=False
    )

    @cached_property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in display orientation (read from the header on first use)."""
        if self.known_size is not None:
            return self.known_size
        if self.read_size is None:
            return 0, 0
        return self.read_size(self.relpath)

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]


@dataclass(frozen=True)
class ClassInfo:
    """One class. ``id`` is the pixel value in label maps and never changes or gets reused.

    ``synonyms`` are extra names averaged with ``name`` for text prompts; ``novel`` marks classes
    the trained model has not seen (unseen in GZS3 metrics); ``order`` is the display order.
    """

    id: int
    name: str
    synonyms: tuple[str, ...]
    color: tuple[int, int, int]
    novel: bool
    order: int

    @property
    def prompt(self) -> str:
        """The engine's class string: name and synonyms joined by ``;``."""
        return "; ".join((self.name, *self.synonyms))


@dataclass(frozen=True)
class Problem:
    """Something the store repaired or set aside on its own (e.g. a quarantined label file)."""

    at: float
    relpath: str
    message: str
