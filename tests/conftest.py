"""Test-wide settings: headless Qt, no network, user settings kept out of the real home."""

from __future__ import annotations

import os
import tempfile

# Must happen before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANNOTATOR_CONFIG_DIR", tempfile.mkdtemp(prefix="annotator-test-config-"))
os.environ.setdefault("ANNOTATOR_CACHE_DIR", tempfile.mkdtemp(prefix="annotator-test-cache-"))

import torch  # noqa: E402

# Two cores here: keep torch from oversubscribing them across pytest's threads.
torch.set_num_threads(2)
