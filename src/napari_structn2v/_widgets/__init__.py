"""napari dock widgets for napari-structn2v.

One module per dock widget (``noise_analysis``, ``mask_designer``, ``train``, ``predict``), each with
its parts in ``_<widget>_*`` modules (``_noise_display``, ``_noise_roi``, ``_mask_grid``,
``_mask_overlay``, ``_train_progress``, ``_train_files``, ``_form``, ``_predict_output``,
``_predict_export``); the job-widget base (``_job``: start, events, stop, errors and cleanup of a
background job), worker glue (``_worker``), signal connections released in one place
(``_signals``), the shared evented state (``_state``), layer helpers and notifications
(``_layers``), the device picker (``_devices``) and a small plot widget (``_plot``). The manifest
points at each widget's defining module, so nothing here is imported until a widget is opened;
torch is imported only when training or prediction starts.
"""
