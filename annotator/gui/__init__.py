"""The desktop app: the only package that imports PySide6, pyqtgraph or superqt.

``annotator.gui.app.launch(folder=..., demo=...)`` starts it. The window shows state and sends
requests; the engine runs in one long-lived worker thread (``engine_worker``), batch jobs in
superqt workers (``jobs``), and the pure numpy tool logic lives in Qt-free modules (``_labelops``,
``_document``, ``_render``, ``_propose``, ``_settings``).
"""
