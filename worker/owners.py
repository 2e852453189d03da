"""Who holds a local lease, and whether that process still exists.

A local run's owner is ``host:pid:start``, where ``start`` is the process's start
time in clock ticks since boot (Linux ``/proc/<pid>/stat``), so a pid reused by a
later process is not mistaken for the owner. Another run on the same host takes
over at once when the owner is gone, instead of waiting for the lease to expire.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (ticks since boot), "" where /proc is missing, None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if not Path("/proc/self/stat").exists():
            return "" if _pid_exists(pid) else None
        return None
    except OSError:
        return ""
    # the command name (field 2) is in parentheses and may contain spaces: split after it
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19]  # field 22 of the whole line


def local_owner() -> str:
    """This process as a lease owner: ``host:pid:start``."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_start(pid) or ''}"


def owner_gone(owner: str) -> bool:
    """True when ``owner`` names a process on this host that no longer exists.

    Owners of other hosts, or in another format, are never declared gone: only
    their lease's expiry frees the job.
    """
    parts = owner.rsplit(":", 2)
    if len(parts) == 3:
        host, pid_text, start = parts
    else:
        host, _, pid_text = owner.rpartition(":")
        start = ""
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    now = process_start(int(pid_text))
    if now is None:
        return True
    return bool(start and now and now != start)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
