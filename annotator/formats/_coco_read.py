"""Reading a COCO document defensively: every image, category and annotation entry is checked,
and a bad one is reported and left out while the rest imports.

Ids may be ints or strings (``7``, ``7.0`` and ``"7"`` are the same id). Duplicate image ids and
duplicate category ids with different names are reported and their annotations left out (which
entry they belong to cannot be known); a category listed twice with the same name is reported
and used once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from annotator.errors import FormatError
from annotator.formats._coco_masks import has_mask
from annotator.formats._validate import as_int, as_text, id_key


@dataclass
class Category:
    """One COCO category: its source ``id`` as written, ``name``, ``supercategory`` and any
    annotator metadata (``color``, ``synonyms``, ``novel``) an own export wrote."""

    id: Any
    name: str
    supercategory: str
    meta: dict[str, Any]


@dataclass
class ImageEntry:
    """One COCO image entry: source ``id``, ``file_name``, declared ``width``/``height`` (None =
    not given) and the status an own export recorded (``annotator_status``)."""

    id: Any
    file_name: str
    width: Any
    height: Any
    status: Any


@dataclass
class CocoContents:
    """A COCO document after checking: categories and images by id key, annotations by image
    id key, and a line per entry left out."""

    categories: dict[str, Category] = field(default_factory=dict)
    images: list[tuple[str, ImageEntry]] = field(default_factory=list)
    annotations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    with_mask: int = 0
    box_only: int = 0


def read_contents(document: Any) -> CocoContents:
    """Check a parsed COCO document; :class:`FormatError` if it is not one at all."""
    if not isinstance(document, dict) or not all(
        isinstance(document.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise FormatError("not a COCO file: it needs lists of images, annotations and categories")
    contents = CocoContents()
    _read_categories(document["categories"], contents)
    _read_images(document["images"], contents)
    _read_annotations(document["annotations"], contents)
    return contents


def _read_categories(entries: list, contents: CocoContents) -> None:
    ambiguous: set[str] = set()
    for number, entry in enumerate(entries):
        try:
            key, category = _category(entry)
        except FormatError as error:
            contents.problems.append(f"category #{number + 1}: {error}; left out")
            continue
        known = contents.categories.get(key)
        if known is not None and known.name.casefold() != category.name.casefold():
            contents.problems.append(
                f"category id {category.id!r} is listed twice ({known.name!r} and {category.name!r});"
                " its annotations are left out"
            )
            ambiguous.add(key)
        elif known is not None:
            contents.problems.append(f"category id {category.id!r} ({category.name!r}) is listed twice")  # fmt: skip
        else:
            contents.categories[key] = category
    for key in ambiguous:
        contents.categories.pop(key, None)


def _category(entry: Any) -> tuple[str, Category]:
    if not isinstance(entry, dict):
        raise FormatError("not an object")
    key = id_key(entry.get("id"), "its id")
    name = as_text(entry.get("name"), "its name")
    supercategory = entry.get("supercategory")
    meta = {k: entry[k] for k in ("color", "synonyms", "novel") if k in entry}
    return key, Category(entry["id"], name, supercategory if isinstance(supercategory, str) else "", meta)  # fmt: skip


def _read_images(entries: list, contents: CocoContents) -> None:
    seen: dict[str, list[ImageEntry]] = {}
    for number, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict):
                raise FormatError("not an object")
            key = id_key(entry.get("id"), "its id")
            name = as_text(entry.get("file_name"), "its file_name", limit=4096)
        except FormatError as error:
            contents.problems.append(f"image #{number + 1}: {error}; left out")
            continue
        image = ImageEntry(entry["id"], name, entry.get("width"), entry.get("height"), entry.get("annotator_status"))  # fmt: skip
        seen.setdefault(key, []).append(image)
    for key, images in seen.items():
        if len(images) > 1:
            names = ", ".join(i.file_name for i in images[:5])
            contents.problems.append(f"image id {images[0].id!r} is used by {len(images)} images ({names}); all left out")  # fmt: skip
        else:
            contents.images.append((key, images[0]))


def _read_annotations(entries: list, contents: CocoContents) -> None:
    image_keys = {key for key, _ in contents.images}
    for number, ann in enumerate(entries):
        try:
            if not isinstance(ann, dict):
                raise FormatError("not an object")
            image_key = id_key(ann.get("image_id"), "its image_id")
            category_key = id_key(ann.get("category_id"), "its category_id")
        except FormatError as error:
            contents.problems.append(f"annotation #{number + 1}: {error}; left out")
            continue
        what = f"annotation {ann.get('id', f'#{number + 1}')!r}"
        if category_key not in contents.categories:
            contents.problems.append(f"{what}: category_id {ann['category_id']!r} has no usable category; left out")  # fmt: skip
        elif image_key not in image_keys:
            contents.problems.append(f"{what}: image_id {ann['image_id']!r} names no usable image; left out")  # fmt: skip
        else:
            contents.annotations.setdefault(image_key, []).append(ann)
            if has_mask(ann):
                contents.with_mask += 1
            else:
                contents.box_only += 1


def paint_order(annotations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Largest ``area`` first, so small regions on top of large ones survive (a missing or
    malformed area counts as 0)."""

    def area(ann: dict[str, Any]) -> float:
        try:
            return float(as_int(round(float(ann.get("area") or 0)), "area", 0, 2**62))
        except (FormatError, TypeError, ValueError, OverflowError):
            return 0.0

    return sorted(annotations, key=lambda a: -area(a))
