"""Starting the desktop app: ``launch(folder=..., demo=...)`` (called by ``annotator``)."""

from __future__ import annotations

import gc
import shutil
import sys
import time
from importlib.resources import files
from pathlib import Path

from annotator.gui._settings import data_dir, load_settings


def sample_folder() -> Path:
    """The bundled sample images (read-only package data)."""
    return Path(str(files("annotator.resources") / "sample"))


def create_demo_copy(target_root: Path | None = None) -> Path:
    """Copy the sample images into a fresh writable folder and return it."""
    root = (target_root or data_dir()) / "demo"
    root.mkdir(parents=True, exist_ok=True)
    target = root / time.strftime("sample-%Y%m%d-%H%M%S")
    suffix = 1
    while target.exists():
        suffix += 1
        target = root / f"{time.strftime('sample-%Y%m%d-%H%M%S')}-{suffix}"
    source = sample_folder()
    shutil.copytree(
        source, target, ignore=shutil.ignore_patterns("*.md", "__init__.py", "__pycache__")
    )
    return target


def create_window(folder: str | Path | None = None, demo: bool = False):  # noqa: ANN201
    """A shown MainWindow (a QApplication must exist), opened on ``folder`` or the demo copy."""
    from annotator.gui.main_window import MainWindow

    window = MainWindow(load_settings())
    window.show()
    if demo:
        folder = create_demo_copy()
    # Long-lived start-up objects (Qt wrappers, torch modules) never need collecting; keeping
    # them out of the collector's way shortens its pauses on the GUI thread.
    gc.freeze()
    if folder is None:
        window.workspace.configure_engine()
    else:
        window.open_folder(folder)  # loads the engine once the project is open
    return window


def launch(folder: str | None = None, demo: bool = False) -> int:
    """Run the app until its window closes; returns the exit code (1: Qt cannot open a
    window here, and the message printed says how to fix it)."""
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        from annotator.gui._platform import check_platform

        problem = check_platform()
        if problem is not None:
            print(problem, file=sys.stderr)
            return 1
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("annotator")
    app.setOrganizationName("annotator")
    from PySide6.QtGui import QIcon

    app.setWindowIcon(QIcon(str(files("annotator.resources") / "icons" / "annotator.svg")))
    if folder is not None and not Path(folder).is_dir():
        print(f"annotator: {folder} is not a folder; choose a folder of images.", file=sys.stderr)
        return 2
    window = create_window(folder, demo)
    code = app.exec()
    del window
    return int(code)
