"""The 80 ImageNet templates are read without importing open_clip (and with it torch): every
EngineConfig needs them, and the app builds one on the GUI thread when a folder opens."""

from __future__ import annotations

import subprocess
import sys

_CHECK = r"""
import sys
from annotator.engine.config import EngineConfig, templates_named
config = EngineConfig()
print(len(config.templates), "open_clip" in sys.modules, "torch" in sys.modules)
import open_clip
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
print(tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES) == templates_named("imagenet"))
"""


def test_imagenet_templates_match_open_clip_and_do_not_import_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHECK], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.split("\n")[:2]
    assert first == "80 False False"
    assert second == "True"
