"""The Train dock's files: the trained model and its loss history, each written only after asking
before a file is replaced."""
from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import QFileDialog

from ..training import history
from ._layers import notify_error, notify_info, report_error


class ModelFilesMixin:
    """Save model… and Save loss as CSV… of :class:`~.train.TrainWidget` (which has ``state`` and an
    ``ask_yes_no`` that tests replace)."""

    def save_model(self, path: str | Path) -> bool:
        """Save the current model; False and a notification on failure."""
        model = self.state.model
        if model is None:
            notify_error("There is no model to save; train one first.")
            return False
        return self._write_confirmed(path, "model file", "the model", lambda: model.save(path, overwrite=True),
                                     f"Model saved to {path}")

    def _write_confirmed(self, path: str | Path, kind: str, what: str, write, done: str) -> bool:
        """Ask before replacing ``path``, run ``write()``, and say how it went; False on refusal or failure."""
        if Path(path).exists() and not self.ask_yes_no(self, f"Replace {kind}?", f"{path} exists. Replace it?"):
            notify_info(f"Not saved: {path} is kept as it was.")
            return False
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - never an exception dialog
            report_error(exc, f"Cannot save {what}: ")
            return False
        notify_info(done)
        return True

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save StructN2V model", "structn2v.pt", "Model (*.pt)",
            options=QFileDialog.Option.DontConfirmOverwrite,  # save_model asks, once
        )
        if path:
            self.save_model(path)

    def save_loss_csv(self, path: str | Path) -> bool:
        """Write the current model's loss history as CSV; False and a notification on failure."""
        model = self.state.model
        if model is None:
            notify_error("There is no model whose loss to save; train one first.")
            return False
        return self._write_confirmed(path, "CSV file", "the loss", lambda: history.save_loss_csv(model, path, overwrite=True),
                                     f"Loss history saved to {path}")

    def _save_loss_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save loss history", "structn2v_loss.csv", "CSV (*.csv)",
            options=QFileDialog.Option.DontConfirmOverwrite,  # save_loss_csv asks, once
        )
        if path:
            self.save_loss_csv(path if Path(path).suffix else path + ".csv")
