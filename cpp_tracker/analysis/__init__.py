"""Track -> occupancy -> summary, bins, QC, lighting: pure functions on tables."""
