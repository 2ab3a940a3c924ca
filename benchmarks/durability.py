"""Durability under kill -9: no confirmed save lost, no map wrong, across the switch to 16-bit maps.

    .venv/bin/python benchmarks/durability.py [--kills 200] [--seed 0] [--start-classes 240]

The project starts with ``--start-classes`` classes and four images labelled as 8-bit maps that
no child saves again. A child process opens it and, until it is killed, saves human labels and
proposals of six other images and edits classes at random (adds, deletes, merges; class ids cross 255, so the project switches
from 8-bit to 16-bit maps during the run). It logs ``begin``/``done`` around every operation.
The parent SIGKILLs it at a random instant, reopens the project, replays the log and compares
every stored map and class with what the confirmed operations must have left (the one operation
in flight at the kill may have happened or not: both states are accepted; one kill in five lands
while the child is still opening the project, i.e. during reconciliation). Then the next child
continues on the same project. Prints kills, confirmed operations and saves, losses (a confirmed
map or class that is gone; must be 0) and wrong maps (pixels that match neither state, e.g.
unlabelled read as a class; must be 0).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

H, W, BANDS = 24, 32, 6
IMAGES = [f"img{index:02d}.png" for index in range(10)]
#: labelled as 8-bit maps before the first child runs, then never saved again (only class edits
#: touch them): what the switch to 16-bit maps must read right
FROZEN = IMAGES[6:]

_CHILD = textwrap.dedent(
    """
    import json, random, sys
    import numpy as np
    from annotator.project import Project

    folder, log_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    project = Project.open(folder)
    log = open(log_path, "a", buffering=1)
    images = [r.relpath for r in project.list_images()][:6]  # the others stay as saved

    def band_map(values):
        out = np.full((24, 32), -1, np.int64)  # -1: not labelled, in any dtype
        for band, value in enumerate(values):
            out[band * 4 : (band + 1) * 4] = value
        return out

    def say(kind, **fields):
        log.write(json.dumps({"kind": kind, **fields}) + "\\n")

    print("ready", flush=True)
    step = 0
    while True:
        step += 1
        ids = [c.id for c in project.list_classes()]
        roll = rng.random()
        if roll < 0.25 or len(ids) < 2:
            name = f"c{seed}-{step}"
            say("begin", op="add", name=name)
            info = project.add_class(name)
            say("done", op="add", name=name, id=info.id)
        elif roll < 0.30:
            victim = rng.choice(ids)
            say("begin", op="delete", id=victim)
            project.delete_class(victim)
            say("done", op="delete", id=victim)
        elif roll < 0.35:
            source, target = rng.sample(ids, 2)
            say("begin", op="merge", source=source, target=target)
            project.merge_classes(source, target)
            say("done", op="merge", source=source, target=target)
        else:
            kind = "labels" if roll < 0.75 else "proposals"
            relpath = rng.choice(images)
            values = [rng.choice(ids + [-1, -1]) for _ in range(6)]
            if max(ids) >= 255 and rng.random() < 0.5:
                values[0] = max(ids)
            say("begin", op="save", map=kind, relpath=relpath, values=values)
            if kind == "labels":
                project.save_labels(relpath, band_map(values))
            else:
                project.save_proposal(relpath, band_map(values), 0.5)
            say("done", op="save", map=kind, relpath=relpath, values=values)
    """
)


@dataclass
class Expected:
    """What the confirmed operations leave: class names by id, band values per stored map."""

    classes: dict[int, str] = field(default_factory=dict)
    maps: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def copy(self) -> Expected:
        return Expected(dict(self.classes), {k: list(v) for k, v in self.maps.items()})

    def apply(self, op: dict) -> None:
        if op["op"] == "add":
            self.classes[op["id"]] = op["name"]
        elif op["op"] in ("delete", "merge"):
            old = op["id"] if op["op"] == "delete" else op["source"]
            new = -1 if op["op"] == "delete" else op["target"]
            del self.classes[old]
            for values in self.maps.values():
                values[:] = [new if v == old else v for v in values]
        else:
            self.maps[(op["map"], op["relpath"])] = list(op["values"])


@dataclass
class Tally:
    kills: int = 0
    confirmed: int = 0
    confirmed_saves: int = 0
    losses: int = 0
    wrong_maps: int = 0
    maps_checked: int = 0
    problems: int = 0
    max_class_id: int = 0
    sixteen_bit_rounds: int = 0
    notes: list[str] = field(default_factory=list)


def _make_project(root: Path, start_classes: int) -> Expected:
    from PIL import Image

    from annotator.project import Project

    root.mkdir(parents=True)
    for index, name in enumerate(IMAGES):
        pixels = np.random.default_rng(index).integers(0, 256, (H, W, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / name)
    expected = Expected()
    rng = random.Random(start_classes)
    with Project.open(root) as project:
        for index in range(start_classes):
            expected.classes[project.add_class(f"start{index}").id] = f"start{index}"
        for relpath in FROZEN:
            values = [rng.choice([*expected.classes, -1]) for _ in range(BANDS)]
            values[-1] = -1
            labels = np.full((H, W), -1, np.int64)
            for band, value in enumerate(values):
                labels[band * 4 : (band + 1) * 4] = value
            project.save_labels(relpath, labels)
            expected.maps[("labels", relpath)] = values
    return expected


def _run_child(root: Path, log: Path, seed: int, rng: random.Random) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(root), str(log), str(seed)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    if rng.random() < 0.2:  # one kill in five lands while the child opens the project
        time.sleep(rng.uniform(0.0, 1.0))
    elif child.stdout.readline().strip() != "ready":
        child.wait()
        raise SystemExit(f"the child failed to start (exit {child.returncode})")
    else:
        time.sleep(rng.uniform(0.0, 0.4))
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


def _replay(log: Path, expected: Expected, tally: Tally) -> tuple[Expected, Expected, dict | None]:
    """(state without the op in flight, state with it, that op or None)."""
    pending: dict | None = None
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut by the kill: its op is the one in flight
        if entry.pop("kind") == "begin":
            pending = entry
            continue
        if entry["op"] == "add" or entry == pending:
            expected.apply(entry)
            tally.confirmed += 1
            tally.confirmed_saves += entry["op"] == "save"
        pending = None
    if pending is None:
        return expected, expected, None
    after = expected.copy()
    if pending["op"] != "add":
        after.apply(pending)
    return expected, after, pending


def _band_values(labels: np.ndarray | None, unlabeled: int) -> list[int] | None:
    if labels is None:
        return None
    bands = [labels[band * 4 : (band + 1) * 4] for band in range(BANDS)]
    if any(len(np.unique(band)) != 1 for band in bands):
        return [-2] * BANDS  # not a band map at all
    return [-1 if int(band[0, 0]) == unlabeled else int(band[0, 0]) for band in bands]


def _settle_add(project, pending: dict | None, before: Expected, after: Expected) -> None:  # noqa: ANN001
    """An add in flight: it happened if the class exists now (its id is what the store gave)."""
    if pending is not None and pending["op"] == "add":
        info = project.find_class(pending["name"])
        if info is not None:
            after.classes[info.id] = info.name


def _check(
    root: Path, before: Expected, after: Expected, pending: dict | None, tally: Tally
) -> Expected:
    """Compare the reopened project with both states; return the state it is in."""
    from annotator.project import Project

    with Project.open(root) as project:
        _settle_add(project, pending, before, after)
        classes = {c.id: c.name for c in project.list_classes()}
        unlabeled = project.unlabeled_value
        tally.sixteen_bit_rounds += unlabeled == 65535
        tally.max_class_id = max([tally.max_class_id, *classes])
        stored = {}
        for relpath in IMAGES:
            stored[("labels", relpath)] = _band_values(project.load_labels(relpath), unlabeled)
            stored[("proposals", relpath)] = _band_values(project.load_proposal(relpath), unlabeled)
        tally.problems = len(project.list_problems())
    state = after if classes == after.classes else before
    if classes != state.classes:
        lost = set(state.classes) - set(classes)
        tally.losses += len(lost)
        tally.notes.append(f"kill {tally.kills}: classes differ (lost {sorted(lost)[:5]})")
        state = Expected(classes, state.maps)
    for key, values in stored.items():
        tally.maps_checked += 1
        if values in (before.maps.get(key), after.maps.get(key)):
            # the op in flight happened or did not: both are right; go on from what is there
            if values is None:
                state.maps.pop(key, None)
            else:
                state.maps[key] = values
            continue
        want = state.maps.get(key)
        if values is None:
            tally.losses += 1
            tally.notes.append(f"kill {tally.kills}: {key} lost (expected {want})")
        else:
            tally.wrong_maps += 1
            tally.notes.append(f"kill {tally.kills}: {key} is {values}, expected {want}")
        state.maps[key] = values if values is not None else want
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--start-classes", type=int, default=240, help="classes before the first child runs"
    )
    args = parser.parse_args()
    logging.getLogger("annotator").setLevel(logging.ERROR)  # recoveries are counted, not logged
    rng = random.Random(args.seed)
    tally = Tally()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="durability-") as temp:
        root, log = Path(temp) / "project", Path(temp) / "ops.jsonl"
        expected = _make_project(root, args.start_classes)
        for kill in range(args.kills):
            log.write_text("")
            _run_child(root, log, args.seed * 100_000 + kill, rng)
            tally.kills += 1
            before, after, pending = _replay(log, expected, tally)
            expected = _check(root, before, after, pending, tally)
    elapsed = time.perf_counter() - started
    print(f"kills            {tally.kills}")
    print(f"confirmed ops    {tally.confirmed}  (saves {tally.confirmed_saves})")
    print(f"maps checked     {tally.maps_checked}")
    print(
        f"max class id     {tally.max_class_id}  (16-bit maps after {tally.sixteen_bit_rounds} kills)"
    )
    print(f"problems logged  {tally.problems}")
    print(f"losses           {tally.losses}  (must be 0)")
    print(f"wrong maps       {tally.wrong_maps}  (must be 0)")
    print(f"wall time        {elapsed:.0f} s")
    for note in tally.notes[:20]:
        print("  " + note)
    raise SystemExit(0 if tally.losses == tally.wrong_maps == 0 else 1)


if __name__ == "__main__":
    main()
