"""Import heavy packages (``training`` pulls in torch) off the GUI thread.

Importing torch takes 5-15 s on a busy machine. The engine thread imports it while the model
loads; a GUI-thread import at the same moment waits on Python's import lock for all of it, and
the window freezes (it did for 8-15 s each time a folder opened, because the Retrain panel lists
the model versions through ``training``). Panels ask :func:`module_ready` first and, when the
module is not imported yet, get a callback on the GUI thread once a background thread has.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import QObject, Signal


def is_imported(name: str) -> bool:
    """True when module ``name`` is in ``sys.modules`` and finished importing."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return module is not None and not getattr(spec, "_initializing", False)


class _Importer(QObject):
    done = Signal(str)  # emitted from the import thread; delivered on the GUI thread

    def __init__(self) -> None:
        super().__init__()
        self._started: set[str] = set()
        self.failed: set[str] = set()  # imports that raised: the caller's own import shows why
        self._waiting: dict[str, list[tuple[QObject, Callable[[], None]]]] = {}
        self.done.connect(self._deliver)

    def request(self, name: str, owner: QObject, callback: Callable[[], None]) -> None:
        self._waiting.setdefault(name, []).append((owner, callback))
        if name not in self._started:
            self._started.add(name)
            threading.Thread(
                target=self._run, args=(name,), name=f"annotator-import-{name}", daemon=True
            ).start()

    def _run(self, name: str) -> None:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the caller imports it again and shows the error
            self.failed.add(name)
        self.done.emit(name)

    def _deliver(self, name: str) -> None:
        self._started.discard(name)
        for owner, callback in self._waiting.pop(name, []):
            if shiboken6.isValid(owner):  # its window may have closed meanwhile
                callback()


_importer: _Importer | None = None


def module_ready(name: str, owner: QObject, callback: Callable[[], None]) -> bool:
    """True when ``name`` is imported (use it now); else False, and ``callback()`` runs on the
    GUI thread once a background thread has imported it (unless ``owner`` was deleted by
    then). Call from the GUI thread only."""
    global _importer
    if _importer is None:
        _importer = _Importer()
    if is_imported(name) or name in _importer.failed:
        return True
    _importer.request(name, owner, callback)
    return False
