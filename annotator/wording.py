"""Small helpers for the words of user-facing messages (CLI, GUI, errors)."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` followed by ``noun`` in the right number: ``plural(1, "image")`` is
    ``"1 image"``, ``plural(0, "image")`` ``"0 images"``, ``plural(2, "label map")``
    ``"2 label maps"``, ``plural(3, "class")`` ``"3 classes"``. ``many`` gives a plural the
    simple rules (add "s"; "es" after s, x, ch, sh; "y" -> "ies" after a consonant) get wrong."""
    return f"{count} {noun if count == 1 else many or plural_of(noun)}"


def plural_of(noun: str) -> str:
    """The plural of ``noun`` (its last word) by the simple English rules."""
    head, _, last = noun.rpartition(" ")
    if last.endswith(("s", "x", "ch", "sh")):
        word = last + "es"
    elif last.endswith("y") and last[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word
