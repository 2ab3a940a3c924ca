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
