"""Transparent snapshots: asyncify-instrumented modules whose whole guest state is saved and restored."""
