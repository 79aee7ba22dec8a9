"""DICOM subsystem: storage and index, DICOMweb, the C-STORE SCP, rendering, slides, de-identification."""
