"""Process helpers for the tests, the demo and the bench: a private redis-server and real Celery workers.

Not part of the installed package: it lives beside ``tests/``, ``demo/`` and ``bench/`` and is
imported from the repository root (the demo's image copies it too).
"""
