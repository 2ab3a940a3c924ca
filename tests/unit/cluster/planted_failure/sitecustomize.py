"""Test helper, on PYTHONPATH for one test only: with ANNOTATOR_TEST_PLANT_FAILURE set, the
training process of rank 1 raises while it encodes its first image (the seam: the job's
per-image work function, looked up at call time). The environment's RANK is read at call time:
the elastic agent sets it inside each worker after start-up."""

import os

if os.environ.get("ANNOTATOR_TEST_PLANT_FAILURE"):
    import training.job as _job

    _original = _job._human_samples

    def _planted(run, position, relpath):
        if os.environ.get("RANK") == "1":
            raise RuntimeError("planted failure on rank 1")
        return _original(run, position, relpath)

    _job._human_samples = _planted
