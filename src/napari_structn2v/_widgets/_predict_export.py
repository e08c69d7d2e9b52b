"""The Predict dock's BioImage Model Zoo export: the current model as a bioimage.io package (.zip),
written by a background job (bioimageio.core is imported there, not when napari starts)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from qtpy.QtWidgets import QFileDialog

from ..errors import StructN2VError
from ._layers import layer_data, notify_error, notify_info, notify_warning


def _run_export(model, path, image, axes, overwrite):
    """Worker body: write the BioImage Model Zoo package; yields its path."""
    from ..bmz.export import export_bmz

    yield export_bmz(model, path, image=image, axes=axes, overwrite=overwrite)


class BmzExportMixin:
    """The export part of :class:`~.predict.PredictWidget`: ``export_button``, the file dialog and
    the ``export`` job (made by the widget with :meth:`_new_export_job`)."""

    def _new_export_job(self) -> None:
        self.export = self._new_job("Export", self._on_export_event, on_failed=self._export_failed)

    @property
    def _export_worker(self) -> Any:
        """The export's napari worker while it runs, else None."""
        return self.export.worker

    def export_bmz(self, path: str | Path, *, overwrite: bool = False) -> Any:
        """Export the current model to ``path`` (a .zip) in a worker; the chosen image layer, if it
        fits the model, gives the test tensors and the cover. Returns the worker or None."""
        model = self.state.model
        if model is None:
            notify_error("There is no model to export: train one or load a model file first.")
            return None
        if self.export.running:
            notify_warning("An export is already running.")
            return None
        image, axes = None, self.axes_edit.text().strip().upper() or None
        source = self.image_combo.layer()
        if source is not None:
            image = layer_data(source)  # lazy stays lazy: the export reads only its test crop
            try:
                axes = model.resolve_axes(image.ndim, axes)
            except StructN2VError:
                image, axes = None, None  # the layer does not fit: the synthetic sample instead
        self.status.setText("Exporting to BioImage Model Zoo…")
        return self.export.start(_run_export, model, str(path), image, axes, overwrite)

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export to BioImage Model Zoo", "structn2v_model.zip", "bioimage.io package (*.zip)"
        )
        if path:  # the dialog asked before replacing the name it returned, not one we extend
            named_zip = path.lower().endswith(".zip")
            self.export_bmz(path if named_zip else path + ".zip", overwrite=named_zip)

    def _on_export_event(self, path: Any) -> None:
        notify_info(f"BioImage Model Zoo package written to {path}")
        self.status.setText(f"Exported to {path}")

    def _export_failed(self, message: str) -> None:
        self.status.setText(f"Export failed: {message}")
