"""User settings of the desktop app (no Qt): a typed dataclass persisted as JSON.

The file lives in the platform's config folder (``platformdirs``), or in ``$ANNOTATOR_CONFIG_DIR``
when that is set (tests set it, so they never touch a real home folder).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

log = logging.getLogger(__name__)

APP_NAME = "annotator"
MAX_RECENT = 10
DEVICES = ("auto", "cpu", "cuda")


def config_dir() -> Path:
    """Where settings live: ``$ANNOTATOR_CONFIG_DIR`` or the platform's user config folder."""
    override = os.environ.get("ANNOTATOR_CONFIG_DIR", "").strip()
    return Path(override) if override else Path(platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    """Where the app keeps writable data (e.g. the demo project): next to the config when
    ``$ANNOTATOR_CONFIG_DIR`` is set, else the platform's user data folder."""
    override = os.environ.get("ANNOTATOR_CONFIG_DIR", "").strip()
    return Path(override) / "data" if override else Path(platformdirs.user_data_dir(APP_NAME))


@dataclass
class AppSettings:
    """What the user chose in the settings dialog, plus remembered window state.

    ``pretrained`` is an open_clip tag (``"openai"``); ``weights_file``, when set, is a local weights
    file used instead. ``device`` is ``auto``, ``cpu`` or ``cuda``; ``threads`` 0 means torch's default.
    ``use_model`` False means "continue without proposals" (the banner stays quiet).
    ``proposer`` is ``dense`` or ``zegformer`` (with ``segments`` and ``segment_score``).
    ``preset`` names a published inference protocol (``annotator models presets``); ``head``
    empty means the preset's head, else it overrides the preset.
    """

    model: str = "ViT-B-16"
    pretrained: str = "openai"
    weights_file: str = ""
    head: str = ""
    preset: str = "naclip-stuff"
    device: str = "auto"
    threads: int = 0
    use_model: bool = True
    prefetch: int = 2
    opacity: float = 0.55
    last_export_dir: str = ""  # the export dialog starts here
    proposer: str = "dense"
    segments: int = 16
    segment_score: str = "pool"
    recent: list[str] = field(default_factory=list)

    def add_recent(self, folder: str | Path) -> None:
        path = str(Path(folder))
        self.recent = [path, *[p for p in self.recent if p != path]][:MAX_RECENT]

    @property
    def weights(self) -> str | None:
        """What :class:`EngineConfig.pretrained` gets: the local file if set, else the tag."""
        return self.weights_file.strip() or self.pretrained.strip() or None


def _settings_path() -> Path:
    return config_dir() / "settings.json"


def load_settings() -> AppSettings:
    """The saved settings, or defaults when there are none or the file is unreadable."""
    path = _settings_path()
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return AppSettings()
    except (OSError, ValueError) as error:
        log.warning("Ignoring unreadable settings file %s: %s", path, error)
        return AppSettings()
    known = {f.name for f in fields(AppSettings)}
    try:
        return AppSettings(**{k: v for k, v in data.items() if k in known})
    except TypeError:
        return AppSettings()


def save_settings(settings: AppSettings) -> None:
    path = _settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(asdict(settings), indent=2), encoding="utf-8")
    temp.replace(path)


def engine_config(settings: AppSettings) -> Any:
    """The :class:`annotator.engine.EngineConfig` these settings select."""
    from annotator.engine.presets import PRESETS, config_from_preset

    return config_from_preset(
        settings.preset if settings.preset in PRESETS else None,
        model=settings.model,
        pretrained=settings.weights or "none",
        head=settings.head or None,
        device=settings.device,
        threads=settings.threads or None,
        proposer=settings.proposer,
        segments=settings.segments,
        segment_score=settings.segment_score,
        download=False,  # the banner asks before downloading, with progress and cancel
    )
