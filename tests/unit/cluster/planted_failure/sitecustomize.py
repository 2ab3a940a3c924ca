"""Test helper, on PYTHONPATH for two tests only (the environment's RANK is read at call time:
the elastic agent sets it inside each worker after start-up).

- ``ANNOTATOR_TEST_PLANT_FAILURE`` set: the process of rank 1 raises while it encodes its first
  image (the seam: the job's per-image work function, looked up at call time).
- ``ANNOTATOR_TEST_FAIL_ONCE=PATH``: the process of rank 1 raises at its 70th optimiser step
  (round 2, step 30 of 40) unless PATH exists, which it creates first: one failure per run.
"""

import os
from pathlib import Path

if os.environ.get("ANNOTATOR_TEST_PLANT_FAILURE"):
    import training.job as _job

    _original = _job._human_samples

    def _planted(run, position, relpath):
        if os.environ.get("RANK") == "1":
            raise RuntimeError("planted failure on rank 1")
        return _original(run, position, relpath)

    _job._human_samples = _planted

if os.environ.get("ANNOTATOR_TEST_FAIL_ONCE"):
    import training.fit as _fit

    _step = _fit._Trainer.step
    _calls = [0]

    def _step_once(self):
        _calls[0] += 1
        marker = Path(os.environ["ANNOTATOR_TEST_FAIL_ONCE"])
        if os.environ.get("RANK") == "1" and _calls[0] == 70 and not marker.exists():
            marker.touch()
            raise RuntimeError("planted one-time failure on rank 1")
        return _step(self)

    _fit._Trainer.step = _step_once
