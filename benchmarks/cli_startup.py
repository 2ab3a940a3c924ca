"""How long the first-use commands take, each in a fresh interpreter (as a user runs them).

Run: ``.venv/bin/python benchmarks/cli_startup.py [--repeat 3]``. Prints figures; asserts nothing.

Cases: ``annotator --help``; ``annotator models list`` (reads open_clip's table without importing
torch) next to the same table read through ``import open_clip`` (what ``models list`` did before);
``annotator models info`` (its offline probe is skipped here with ``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CASES = {
    "annotator --help": [sys.executable, "-m", "annotator", "--help"],
    "annotator models list": [sys.executable, "-m", "annotator", "models", "list"],
    "open_clip.list_pretrained() (old way)": [
        sys.executable, "-c", "import open_clip; open_clip.list_pretrained()",
    ],
    "annotator models info (offline flag)": [sys.executable, "-m", "annotator", "models", "info"],
}  # fmt: skip


def seconds(command: list[str]) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'command':<40} {'median s':>9} {'min s':>7}")
    for name, command in CASES.items():
        runs = [seconds(command) for _ in range(args.repeat)]
        print(f"{name:<40} {statistics.median(runs):>9.2f} {min(runs):>7.2f}")


if __name__ == "__main__":
    main()
