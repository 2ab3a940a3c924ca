"""How long the first-use commands take, each in a fresh interpreter (as a user runs them).

Run: ``.venv/bin/python benchmarks/cli_startup.py [--repeat 3]``. Prints figures; asserts nothing.

Cases: ``annotator --help``; ``annotator models list`` (reads open_clip's table without importing
torch) next to the same table read through ``import open_clip`` (what ``models list`` did before);
``annotator models info`` (its offline probe is skipped here with ``HF_HUB_OFFLINE=1``);
``annotator propose`` on a machine without the weights (an empty cache, offline: it fails with the
missing-weights message, found before torch is imported) next to ``import torch`` alone (the least
it took when the engine looked for the weights after loading torch and open_clip).
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_SCRATCH = Path(tempfile.mkdtemp(prefix="annotator-bench-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
_IMAGE = _SCRATCH / "a.png"
_IMAGE.write_bytes(
    bytes.fromhex(  # a 1 x 1 PNG: the command fails before reading it anyway
        "89504e470d0a1a0a0000000d49484452000000010000000108020000009077"
        "53de0000000c4944415408d763f8ffff3f0005fe02fea7d6a4e30000000049454e44ae426082"
    )
)

CASES = {
    "annotator --help": [sys.executable, "-m", "annotator", "--help"],
    "annotator models list": [sys.executable, "-m", "annotator", "models", "list"],
    "open_clip.list_pretrained() (old way)": [
        sys.executable, "-c", "import open_clip; open_clip.list_pretrained()",
    ],
    "annotator models info (offline flag)": [sys.executable, "-m", "annotator", "models", "info"],
    "annotator propose, no weights (fails)": [
        sys.executable, "-m", "annotator", "propose", str(_IMAGE), "--classes", "cat",
        "--out", str(_SCRATCH / "out"),
    ],
    "import torch (the old floor of that)": [sys.executable, "-c", "import torch"],
}  # fmt: skip


def seconds(command: list[str]) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANNOTATOR_CACHE_DIR": str(_SCRATCH / "cache")}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=env)
    if done.returncode != 0 and "propose" not in command:
        raise SystemExit(f"{command} failed: {done.stderr.decode()[-500:]}")
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
