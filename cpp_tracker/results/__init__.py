"""The result folder: atomic writes, part files, the run record, stored results."""
