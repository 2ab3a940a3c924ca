"""Flags shared by every command that opens a project folder."""

from __future__ import annotations

import argparse


def add_sidecar_argument(parser: argparse.ArgumentParser) -> None:
    """``--sidecar DIR``: where the project keeps its data (default ``FOLDER/.annotator``)."""
    parser.add_argument(
        "--sidecar", default=None, help="project data folder (default FOLDER/.annotator)"
    )
