"""Settings of a wasmjob fleet: wasmjob's own (``Settings``) and Celery's (``CeleryConfig``)."""

from .celeryconfig import CeleryConfig, celery_config
from .settings import DEFAULT_REDIS_URL, Settings

__all__ = ["CeleryConfig", "DEFAULT_REDIS_URL", "Settings", "celery_config"]
