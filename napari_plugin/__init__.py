"""napari plugin for sciSR (installed as ``napari_scisr``).

Contributions (``napari.yaml``): a reader for DICOM files and series folders, NIfTI and FITS; a writer
back to NIfTI, FITS or a DICOM series folder with the geometry kept; the "Super-resolution" dock
widget; three sample images. The display convention for medical volumes and sky frames is described
in :mod:`napari_scisr._layers`. Nothing is imported here, so napari reads the manifest without Qt.
"""
