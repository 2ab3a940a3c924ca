"""The ``annotator`` command.

``annotator [FOLDER] [--demo]`` opens the desktop app; ``annotator SUBCOMMAND ...`` runs the engine,
store and training headless. Every public module in this package is one subcommand: it defines
``NAME``/``HELP`` and ``register(parser)``, and sets ``run`` (``args -> exit code``) as the
parser's default. Modules import heavy libraries (torch, open_clip, Qt) inside ``run`` only, so
``annotator --help`` stays fast and the headless commands never load Qt.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from annotator import __version__


def _subcommand_modules() -> list[ModuleType]:
    names = sorted(
        info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")
    )
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="annotator",
        usage="annotator [FOLDER] [--demo]\n       annotator COMMAND [options]",
        description="Zero-shot semantic segmentation labelling. Without a command, "
        "'annotator [FOLDER]' opens the desktop app (on FOLDER, a folder of images).",
    )
    parser.add_argument("--version", action="version", version=f"annotator {__version__}")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open the desktop app on a fresh copy of the bundled sample folder",
    )
    # prog: "usage: annotator import [-h] ...", not the two-line usage above glued in front.
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", prog="annotator"
    )
    for module in _subcommand_modules():
        sub = commands.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.register(sub)
    return parser


def _is_subcommand_call(argv: Sequence[str]) -> bool:
    if not argv:
        return False
    first = argv[0]
    if first in ("-h", "--help", "--version"):
        return True
    return any(first == module.NAME for module in _subcommand_modules())


def unknown_command_message(word: str) -> str | None:
    """What to say when ``word`` (the first argument) is neither a command nor a folder; None
    when it names an existing path (the app then opens or rejects it) or is an option."""
    if word.startswith("-") or Path(word).exists():
        return None
    names = [module.NAME for module in _subcommand_modules()]
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    if close:
        return f"annotator: unknown command '{word}' (did you mean {close[0]}?)"
    return (
        f"annotator: '{word}' is neither a command nor a folder. Commands: {', '.join(names)}; "
        "'annotator FOLDER' opens the app on a folder of images."
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not _is_subcommand_call(argv):
        problem = unknown_command_message(argv[0])
        if problem is not None:
            print(problem, file=sys.stderr)
            return 2
    if not _is_subcommand_call(argv):
        from annotator.cli._app import run_app

        return run_app(argv)
    args = build_parser().parse_args(argv)
    from annotator.errors import AnnotatorError

    try:
        return int(args.run(args) or 0)
    except AnnotatorError as error:  # what a user caused: the message, never a traceback
        print(f"annotator {args.command}: {error}", file=sys.stderr)
        return 1
