"""The model's state as the user sees it: the weights banner and its actions (download, retry,
local file, random weights, continue without), the loading indicator and the status-bar label."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QLabel, QProgressBar

from annotator.gui._settings import save_settings
from annotator.gui.engine_worker import EngineState
from annotator.gui.notices import RANDOM_TIP


class ModelControls(QObject):
    """Wires the banner, the engine's state and the weights download of ``window``."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.downloading = False
        self.loading_bar = QProgressBar()
        self.loading_bar.setRange(0, 0)  # busy: loading has no measurable progress
        self.loading_bar.setMaximumWidth(120)
        self.loading_bar.setTextVisible(False)
        self.loading_label = QLabel("")
        bar = window.statusBar()
        bar.addPermanentWidget(self.loading_label)
        bar.addPermanentWidget(self.loading_bar)
        self._set_loading(None)
        self._connect()

    def _connect(self) -> None:
        window, banner = self.window, self.window.banner
        window.workspace.engine_loading.connect(self._set_loading)
        window.workspace.engine_state.connect(self.show_engine_state)
        banner.continue_requested.connect(self.continue_without_model)
        banner.choose_file_requested.connect(self.choose_weights)
        banner.settings_requested.connect(window.open_settings)
        banner.download_requested.connect(self.download)
        banner.random_requested.connect(self.use_random_weights)
        banner.cancel_requested.connect(self.cancel_download)
        window.jobs.failed.connect(self.job_failed)
        window.jobs.ended.connect(self._job_ended)

    @property
    def loading(self) -> bool:
        return self.loading_bar.isVisible()

    def _set_loading(self, model: str | None) -> None:
        """Show the busy indicator while ``model`` loads (None: hide it)."""
        self.loading_bar.setVisible(model is not None)
        self.loading_label.setVisible(model is not None)
        if model is not None:
            self.loading_label.setText(f"Loading {model}…")
            self.window.model_label.setText(f"Model: {model} (loading)")

    def show_engine_state(self, state: EngineState) -> None:
        window = self.window
        self._set_loading(None)
        random = " · random weights" if state.available and state.random_weights else ""
        off = "" if state.available else " (off)"
        window.model_label.setText(f"Model: {state.model}{random}{off}")
        window.model_label.setToolTip(RANDOM_TIP if random else "")
        window.device_label.setText(f"Device: {state.device}")
        if not state.available and window.settings.use_model and state.error:
            if not self.downloading:
                window.banner.show_missing(state.error, state.details)
        elif not self.downloading:
            window.banner.hide()
        for key in ("propose", "propose_all"):
            window.actions[key].setEnabled(state.available)

    def _reconfigure(self) -> None:
        save_settings(self.window.settings)
        self.window.workspace.configure_engine()

    def use_random_weights(self) -> None:
        """Load the model with random weights: the workflow works, the masks mean nothing."""
        settings = self.window.settings
        settings.pretrained, settings.weights_file, settings.use_model = "none", "", True
        self._reconfigure()
        self.window.statusBar().showMessage(RANDOM_TIP, 8000)

    def continue_without_model(self) -> None:
        self.window.settings.use_model = False
        save_settings(self.window.settings)
        self.window.banner.hide()
        self.window.statusBar().showMessage(
            "Continuing without proposals; turn them on in Settings.", 6000
        )

    def choose_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Model weights", "",
            "Weights (*.safetensors *.bin *.pt *.pth);;All files (*)",
        )  # fmt: skip
        if path:
            self.window.settings.weights_file = path
            self._reconfigure()

    def download(self) -> None:
        from annotator.gui._engine import download_job

        window = self.window
        if window.jobs.busy:
            window.statusBar().showMessage("Wait for the running job to finish.", 5000)
            return
        self.downloading = True
        window.banner.set_downloading(
            True, "Downloading the model weights… (Cancel keeps the part)"
        )
        window.jobs.on_done = self._download_done
        settings = window.settings
        window.jobs.start("Downloading model weights…", download_job, settings.model,
                          settings.pretrained)  # fmt: skip

    def _download_done(self, path: Any) -> None:
        self.downloading = False
        self.window.statusBar().showMessage(f"Weights saved to {path}", 8000)
        self.window.workspace.configure_engine()

    def job_failed(self, message: str, details: str) -> None:
        """A failed download stays in the banner (one line, details, Retry); other jobs'
        failures go to the notification strip."""
        if self.downloading:
            self.downloading = False
            # The message already lists the cache folder and URLs; a traceback only helps when
            # the error is unexpected (a one-line message).
            details = details if len(message.strip().splitlines()) <= 1 else ""
            stopped = message.lower().startswith("download cancelled")
            headline = "Download stopped:" if stopped else "The download failed:"
            self.window.banner.show_download_failed(message, details, headline)
        else:
            self.window.notice.show_message(message, details)

    def _job_ended(self) -> None:
        if self.downloading:  # cancelled: neither finished nor failed
            self.downloading = False
            self.window.banner.show_download_failed(
                "Retry resumes it.", headline="Download stopped:"
            )

    def cancel_download(self) -> None:
        if self.window.jobs.dialog is not None:
            self.window.jobs.dialog.cancel()
