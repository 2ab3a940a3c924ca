"""The ``annotator`` command.

``annotator [FOLDER] [--demo]`` opens the desktop app; ``annotator SUBCOMMAND ...`` runs the engine,
store and training headless. Every public module in this package is one subcommand: it defines
``NAME``/``HELP`` and ``register(parser)``, and sets ``run`` (``args -> exit code``) as the
parser's default. Modules import heavy libraries (torch, open_clip, Qt) inside ``run`` only, so
``annotator --help`` stays fast and the headless commands never load Qt.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
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
        description="Zero-shot semantic segmentation labelling. Without a subcommand, "
        "'annotator [FOLDER]' opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"annotator {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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
