"""The fleet's Celery app, for ``celery -A wasmjob.fleet.app worker`` (and ``flower``).

Importing this module is starting a worker or Flower: it reads the ``WASMJOB_*``
environment once, here. Libraries and the client use ``factory.create_app``.
"""

from wasmjob.broker_config import Settings

from .factory import create_app

app = create_app(Settings.from_env(), set_as_current=True)

__all__ = ["app"]
