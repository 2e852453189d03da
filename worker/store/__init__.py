"""Checkpoint stores: the interface and its embedded implementation."""

from .base import CheckpointStore, LogLine, ProgressUpdate
from .local import LocalStore

__all__ = ["CheckpointStore", "LocalStore", "LogLine", "ProgressUpdate"]
