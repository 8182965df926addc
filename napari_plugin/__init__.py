"""napari plugin for sciSR (installed as ``napari_scisr``)."""
