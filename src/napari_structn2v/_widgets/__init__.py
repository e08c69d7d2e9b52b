"""napari dock widgets for napari-structn2v.

One module per dock widget (``noise_analysis``, ``mask_designer``, ``train``, ``predict``), the shared
evented state (``_state``), worker glue (``_worker``), layer helpers (``_layers``) and a small plot
widget (``_plot``). The manifest points at each widget's defining module, so nothing here is imported
until a widget is opened; torch is imported only when training or prediction starts.
"""
