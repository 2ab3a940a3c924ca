"""``annotator [FOLDER] [--demo]``: open the desktop app (the only CLI path that loads Qt)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def build_app_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="annotator",
        description="Open the desktop app. Run 'annotator --help' for the headless commands.",
    )
    parser.add_argument("folder", nargs="?", help="image folder to open as a project")
    parser.add_argument(
        "--demo", action="store_true", help="open a copy of the bundled sample folder"
    )
    return parser


def run_app(argv: Sequence[str]) -> int:
    args = build_app_parser().parse_args(list(argv))
    try:
        from annotator.gui.app import launch
    except ImportError as error:
        print(f"annotator: the desktop app cannot start: {error}")
        return 2
    return launch(folder=args.folder, demo=args.demo)
