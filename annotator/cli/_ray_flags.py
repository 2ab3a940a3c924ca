"""``--ray [local|auto|ADDRESS]`` and ``--workers N`` of ``annotator propose``
(:mod:`annotator.cluster.ray_propose`)."""

from __future__ import annotations

import argparse
import sys


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the "on a Ray cluster" flag group."""
    group = parser.add_argument_group("on a Ray cluster (pip install 'annotator[cluster]')")
    group.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="local|auto|ADDRESS",
        help="propose on Ray workers: local (start Ray on this machine, the default), auto (join "
        "the cluster of 'ray start'), or a cluster address; images and weights must lie at the "
        "same paths on every node",
    )
    group.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="with --ray: number of workers, each with its own model (default: one per GPU of "
        "the cluster, else one per 4 CPUs)",
    )


def check_ray_arguments(args: argparse.Namespace) -> int | None:
    """Exit code 2 (with the reason on stderr) when the Ray flags cannot work, else None."""
    if args.workers is not None and args.ray is None:
        print("annotator propose: --workers needs --ray", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print("annotator propose: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.ray is None:
        return None
    if args.ray not in ("local", "auto") and ":" not in args.ray:
        print(f"annotator propose: --ray takes local, auto or a cluster address (HOST:PORT, "
              f"ray://HOST:PORT), not {args.ray!r}; to give image PATHs after it, write "
              f"--ray local PATH...", file=sys.stderr)  # fmt: skip
        return 2
    from annotator.cluster.ray_propose import INSTALL_HINT, ray_available

    if not ray_available():
        print(f"annotator propose: --ray needs Ray, which is not installed; install it with: "
              f"{INSTALL_HINT}", file=sys.stderr)  # fmt: skip
        return 2
    return None
