"""Local processes of a fleet: a private ``redis-server`` and ``celery worker`` processes.

The demo and the integration tests use these to run the real thing on one
machine: Redis on a free port in a temp dir (AOF on), workers in their own
process groups so one can be SIGKILLed or SIGSTOPped as a whole, like a lost machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from wasmjob.errors import ConfigError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def terminate(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM ``proc`` and wait for it; SIGKILL it when it outlives ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def find_redis_server() -> str:
    path = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if path is None:
        raise ConfigError("redis-server is not installed: install it (e.g. apt-get install redis-server) or set WASMJOB_REDIS_URL")
    return path


def redis_reachable(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis at ``url`` answers PING."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.exceptions.RedisError, ValueError, OSError):
        return False


class LocalRedis:
    """A private redis-server: takes a data directory, an optional port and password.

    AOF is on (fsync every second, as in production) with ``noeviction``, so a
    restart keeps every job, lease and queued message.
    """

    def __init__(
        self, data_dir: Path, port: int | None = None, *, password: str | None = None, extra_args: list[str] | None = None
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.password = password
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def url_as(self, user: str, password: str) -> str:
        """The URL for one of the server's ACL users."""
        return f"redis://{user}:{password}@127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> LocalRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--maxmemory-policy", "noeviction", "--protected-mode", "no", "--logfile", "redis.log",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra_args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not redis_reachable(self.url):
            if self.proc.poll() is not None:
                log = (self.data_dir / "redis.log").read_text(errors="replace")[-400:] if (self.data_dir / "redis.log").exists() else ""
                raise ConfigError(f"redis-server exited with {self.proc.returncode}: {log.strip()}")
            if time.monotonic() > deadline:
                raise ConfigError(f"redis-server did not answer on port {self.port} within {timeout:g}s")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Redis flushes its AOF) and wait."""
        terminate(self.proc, timeout)

    def restart(self, downtime: float = 0.0) -> None:
        self.stop()
        time.sleep(downtime)
        self.start()


class LocalSentinel:
    """A private Redis Sentinel watching the master on ``master_port`` as ``master`` (quorum 2,
    down after 1 s): ``redis-server --sentinel`` with its own config file in ``data_dir``."""

    def __init__(self, data_dir: Path, master_port: int, *, master: str = "mymaster", port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.master_port = master_port
        self.master = master
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"sentinel://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> LocalSentinel:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.data_dir}\nlogfile sentinel.log\n"
            f"sentinel monitor {self.master} 127.0.0.1 {self.master_port} 2\n"
            f"sentinel down-after-milliseconds {self.master} 1000\n"
            f"sentinel failover-timeout {self.master} 5000\n"
            f"sentinel parallel-syncs {self.master} 1\n"
        )
        self.proc = subprocess.Popen(
            [find_redis_server(), str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not redis_reachable(f"redis://127.0.0.1:{self.port}"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise ConfigError(f"redis sentinel on port {self.port} did not start; see {self.data_dir}")
            time.sleep(0.05)
        return self

    def master_port_now(self) -> int | None:
        """The port of the master this sentinel names now (it changes after a failover)."""
        import redis

        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            host_port = client.sentinel_get_master_addr_by_name(self.master)
            return int(host_port[1]) if isinstance(host_port, (tuple, list)) else None
        except redis.exceptions.RedisError:
            return None
        finally:
            client.close()

    def stop(self) -> None:
        terminate(self.proc, 10)


class LocalWorker:
    """A ``celery -A wasmjob.fleet.app worker`` in its own process group.

    Takes a node name, the environment (``WASMJOB_*``), concurrency, pool and a log file.
    """

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        log_path: Path,
        *,
        concurrency: int = 1,
        pool: str = "prefork",
        queues: str = "wasmjob",
        loglevel: str = "INFO",
    ) -> None:
        self.name = name
        self.env = env
        self.log_path = Path(log_path)
        self.concurrency = concurrency
        self.pool = pool
        self.queues = queues
        self.loglevel = loglevel
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def hostname(self) -> str:
        return f"{self.name}@{socket.gethostname()}"

    def command(self) -> list[str]:
        """``wasmjob worker``, as users start it (it execs Celery's worker in the same process)."""
        return [
            sys.executable, "-m", "wasmjob", "worker",
            "-n", f"{self.name}@%h", "-c", str(self.concurrency), "-P", self.pool, "-Q", self.queues, "-l", self.loglevel,
        ]

    def start(self) -> LocalWorker:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        log.close()
        return self

    def wait_ready(self, timeout: float = 30.0) -> LocalWorker:
        """Block until the worker logged that it is ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ConfigError(f"worker {self.name} exited with {self.proc.returncode}; see {self.log_path}")
            if " ready." in self.log_since_start():
                return self
            time.sleep(0.1)
        raise ConfigError(f"worker {self.name} not ready after {timeout:g}s; see {self.log_path}")

    def log_since_start(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def describe(self) -> str:
        """Each process of the worker's group: its state, what it waits in, and (with py-spy on
        the PATH or beside this Python) its threads' stacks; for a worker that stalls in a test."""
        if not self.alive:
            return f"{self.name}: not running"
        assert self.proc is not None
        spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
        lines = []
        for pid, stat in _group_members(self.proc.pid).items():
            try:
                wchan = Path(f"/proc/{pid}/wchan").read_text()
            except OSError:
                continue
            lines.append(f"{self.name} pid {pid} ppid {stat[1]} state {stat[0]} wchan {wchan or '-'}")
            lines.append(f"  main thread in {_blocked_on(pid)}")
            if spy:
                dump = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30)
                lines.append(dump.stdout + dump.stderr)
        return "\n".join(lines)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the worker's whole process group (main process and pool children)."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL the whole worker, as if its machine died."""
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self, timeout: float = 15.0) -> None:
        """Warm shutdown (SIGTERM); SIGKILL if it does not exit in time."""
        if not self.alive:
            self.signal(signal.SIGKILL)  # orphaned children, if any
            return
        assert self.proc is not None
        self.signal(signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.signal(signal.SIGKILL)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


class LocalFlower:
    """``wasmjob flower`` on a free loopback port with its API open; takes the environment
    (``WASMJOB_*``) and a log file. ``start`` waits until Flower lists ``workers`` (node
    names without their host) or, when none are named, any worker at all."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = Path(log_path)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, data: bytes | None = None) -> Any:
        """GET (or POST ``data`` to) one of Flower's API paths; the decoded JSON."""
        import json
        import urllib.request

        with urllib.request.urlopen(urllib.request.Request(self.base + path, data=data), timeout=5) as response:
            return json.loads(response.read())

    def start(self, workers: tuple[str, ...] = (), timeout: float = 60.0) -> LocalFlower:
        env = {**os.environ, **self.env, "FLOWER_UNAUTHENTICATED_API": "true"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wasmjob", "flower", f"--port={self.port}", "--address=127.0.0.1"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                seen = {name.split("@")[0] for name in self.api("/api/workers?refresh=1")}
                if seen and set(workers) <= seen:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"Flower did not list the workers {workers or 'at all'}: {self.log()[-2000:]}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        terminate(self.proc, timeout)

    def __enter__(self) -> LocalFlower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_members(pgid: int) -> dict[int, list[str]]:
    """The processes in group ``pgid`` by pid, each with its /proc stat fields after the
    command name (state, ppid, pgrp, ...)."""
    members = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                members[int(entry.name)] = fields
    return dict(sorted(members.items()))


def _blocked_on(pid: int) -> str:
    """The system call a process's main thread is in and, for a call on a socket, the socket's
    two ends (to match with Redis's CLIENT LIST): which connection a stalled read waits on."""
    try:
        call = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError as exc:
        return f"? ({exc.strerror})"
    if len(call) < 2 or not call[0].isdigit():
        return " ".join(call) or "?"
    fd = int(call[1], 16)
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return f"syscall {call[0]}"
    return f"syscall {call[0]} on fd {fd} = {target}{_tcp_ends(pid, target)}"


def _tcp_ends(pid: int, target: str) -> str:
    if not target.startswith("socket:["):
        return ""
    inode = target[len("socket:["):-1]
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9 and fields[9] == inode:
            return f" {_hex_endpoint(fields[1])} -> {_hex_endpoint(fields[2])}"
    return ""


def _hex_endpoint(text: str) -> str:
    """``0100007F:1F90`` (as /proc/net/tcp writes IPv4 ends) -> ``127.0.0.1:8080``."""
    address, port = text.split(":")
    octets = bytes.fromhex(address)[::-1]
    return f"{'.'.join(str(b) for b in octets)}:{int(port, 16)}"
