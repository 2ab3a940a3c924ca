"""Can Qt open a window here? Checked before the QApplication exists (no Qt import).

Qt aborts the whole process (``Aborted``, exit 134) when its platform plugin cannot load, and its
own message often names the wrong library. On Linux with X11 this module asks ``ldd`` which
shared libraries of the ``xcb`` plugin are missing and turns them into one ``apt-get install``
line; with no display at all it says so.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Shared library (soname) -> the Debian/Ubuntu package that ships it.
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
}


def xcb_plugin() -> Path | None:
    """PySide6's ``libqxcb.so`` (found without importing Qt), or None when absent."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or spec.origin is None:
        return None
    plugin = Path(spec.origin).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def missing_libraries(library: Path) -> list[str]:
    """Sonames ``ldd`` reports as "not found" for ``library`` (and what it links); [] when
    nothing is missing or ``ldd`` is not there to ask."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    try:
        out = subprocess.run(
            [ldd, str(library)], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    missing = [line.split()[0] for line in out.splitlines() if "not found" in line]
    return list(dict.fromkeys(missing))


def install_hint(sonames: list[str]) -> str:
    """The message for missing ``sonames``: the exact ``apt-get`` line, and any library with
    no known package by name."""
    packages = [DEBIAN_PACKAGES[s] for s in sonames if s in DEBIAN_PACKAGES]
    unknown = [s for s in sonames if s not in DEBIAN_PACKAGES]
    lines = [
        "annotator: the desktop app cannot open a window: Qt's X11 (xcb) platform plugin "
        f"needs system libraries that are not installed: {', '.join(sonames)}."
    ]
    if packages:
        lines.append("Install them (Debian/Ubuntu) with:")
        lines.append(f"    sudo apt-get install -y {' '.join(packages)}")
    if unknown:
        lines.append(f"Install the packages that provide: {', '.join(unknown)}.")
    lines.append("The headless commands ('annotator --help') work without them.")
    return "\n".join(lines)


NO_DISPLAY = (
    "annotator: the desktop app needs a display, and there is none (DISPLAY and "
    "WAYLAND_DISPLAY are not set). Run it in a desktop session, over 'ssh -X', or under a "
    "virtual X server ('xvfb-run annotator --demo'). The headless commands "
    "('annotator --help') work without a display."
)


def check_platform(environ: dict[str, str] | None = None) -> str | None:
    """Why Qt could not open a window here, or None when it should (or we cannot tell).

    Only Linux with the default/xcb platform is checked; other platforms (``offscreen``,
    ``wayland``, macOS, Windows) are left to Qt.
    """
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return None
    platform = env.get("QT_QPA_PLATFORM", "").strip().split(":")[0]
    if platform not in ("", "xcb"):
        return None
    if platform == "" and env.get("WAYLAND_DISPLAY"):
        return None
    if not env.get("DISPLAY"):
        return NO_DISPLAY
    plugin = xcb_plugin()
    missing = missing_libraries(plugin) if plugin is not None else []
    return install_hint(missing) if missing else None
