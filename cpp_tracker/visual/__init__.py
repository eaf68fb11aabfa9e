"""Pictures and pages: preview, QC figure, review clips and overlays, report."""
