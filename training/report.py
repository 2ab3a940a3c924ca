"""Before/after metric tables for the CLI and the GUI (plain data, no formatting library)."""

from __future__ import annotations

from typing import Any

from annotator.metrics import MetricsReport

#: Summary rows: (label, attribute of MetricsReport).
SUMMARY_ROWS: tuple[tuple[str, str], ...] = (
    ("mIoU", "miou"),
    ("seen mIoU", "seen_miou"),
    ("unseen mIoU", "unseen_miou"),
    ("hIoU", "hiou"),
    ("PA", "pixel_accuracy"),
    ("MA", "mean_accuracy"),
)

Row = tuple[str, float | None, float | None]


def _get(report: MetricsReport | dict[str, Any], name: str) -> Any:
    return report.get(name) if isinstance(report, dict) else getattr(report, name)


def comparison_rows(
    before: MetricsReport | dict[str, Any], after: MetricsReport | dict[str, Any]
) -> list[Row]:
    """Rows (label, before, after), fractions in [0, 1] or None: summary figures, then the IoU
    of every class (labelled ``IoU <name>``, ``(unseen)`` appended for unseen classes).

    Takes :class:`MetricsReport` objects or their JSON dicts (``ModelVersion.metrics``).
    """
    rows: list[Row] = [
        (label, _get(before, name), _get(after, name)) for label, name in SUMMARY_ROWS
    ]
    iou_before = dict(zip(_get(before, "class_names"), _get(before, "iou"), strict=True))
    unseen = set(_get(after, "unseen") or ())
    for name, iou in zip(_get(after, "class_names"), _get(after, "iou"), strict=True):
        suffix = " (unseen)" if name in unseen else ""
        rows.append((f"IoU {name}{suffix}", iou_before.get(name), iou))
    return rows


def headline(report: MetricsReport | dict[str, Any]) -> tuple[str, float | None]:
    """The figure versions are compared by: ("hIoU", value) when the held-out images score
    both seen and unseen classes, else ("mIoU", value); value None when nothing was scored."""
    hiou = _get(report, "hiou")
    return ("hIoU", hiou) if hiou is not None else ("mIoU", _get(report, "miou"))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def format_comparison(before: MetricsReport, after: MetricsReport) -> str:
    """A plain-text table of :func:`comparison_rows` in percent, with the change."""
    rows = comparison_rows(before, after)
    width = max(len(label) for label, _, _ in rows)
    lines = [f"{'':<{width}}  {'before':>7}  {'after':>7}  {'change':>7}"]
    for label, old, new in rows:
        change = "-" if old is None or new is None else f"{100 * (new - old):+.1f}"
        lines.append(f"{label:<{width}}  {_pct(old):>7}  {_pct(new):>7}  {change:>7}")
    lines.append(f"held-out images: {after.images}")
    return "\n".join(lines)


def report_json(report: MetricsReport) -> dict[str, Any]:
    """``report`` as a JSON-ready dict without the confusion matrix."""
    data = report.to_dict()
    data.pop("matrix", None)
    return data


#: Figures a version listing shows: (label, key of the stored metrics JSON).
LISTING_FIGURES: tuple[tuple[str, str], ...] = (
    ("mIoU", "miou"),
    ("seen", "seen_miou"),
    ("unseen", "unseen_miou"),
    ("hIoU", "hiou"),
)

#: The list entry that stands for "no trained version": proposals from the zero-shot model only.
ZERO_SHOT_ENTRY = "zero-shot only"


def scores_text(metrics: dict[str, Any] | None) -> str:
    """``"mIoU 61.0  seen 80.1  unseen 42.3  hIoU 55.4"`` from a stored metrics JSON dict
    (``"-"`` for a figure that was not scored; only ``"no held-out scores"`` when none was)."""
    if not metrics or metrics.get("miou") is None:
        return "no held-out scores"
    return "  ".join(f"{label} {_pct(metrics.get(key))}" for label, key in LISTING_FIGURES)


def zero_shot_metrics(versions: list[Any]) -> dict[str, Any] | None:
    """Stored held-out scores of zero-shot only: the "before" of the newest version that was
    trained while zero-shot was active (None when no version recorded that)."""
    for version in reversed(versions):
        extra = version.extra
        if "compared_with" in extra and extra["compared_with"] is None:
            return version.metrics.get("before")
    return None


def version_lines(versions: list[Any]) -> list[str]:
    """One line per version (oldest first) with its stored scores, then the zero-shot entry;
    ``(active)`` marks the one proposals use."""
    lines = []
    for version in versions:
        kind = "  generative" if version.extra.get("generative") else ""
        mark = "  (active)" if version.active else ""
        round_text = f"round {version.extra.get('round', '?')}"
        after = version.metrics.get("after")
        lines.append(f"{version.id}  {round_text}  {scores_text(after)}{kind}{mark}")
    mark = "" if any(v.active for v in versions) else "  (active)"
    lines.append(f"{ZERO_SHOT_ENTRY}  {scores_text(zero_shot_metrics(versions))}{mark}")
    return lines
