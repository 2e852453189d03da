"""The README's first command, ``python -m demo``: see ``__main__.py``."""
