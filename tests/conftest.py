"""Test-wide settings: headless Qt, no network, user settings kept out of the real home."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile


def _scratch_setting(name: str, prefix: str) -> None:
    """Point a user-directory setting at a scratch folder removed when the run ends (unless set)."""
    if name not in os.environ:
        folder = tempfile.mkdtemp(prefix=prefix)
        os.environ[name] = folder
        atexit.register(shutil.rmtree, folder, ignore_errors=True)


# Must happen before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
_scratch_setting("ANNOTATOR_CONFIG_DIR", "annotator-test-config-")
_scratch_setting("ANNOTATOR_CACHE_DIR", "annotator-test-cache-")

import torch  # noqa: E402

# Two cores here: keep torch from oversubscribing them across pytest's threads.
torch.set_num_threads(2)
