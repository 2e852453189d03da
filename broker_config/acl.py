"""Redis ACL users for a fleet: producers enqueue and read, workers run jobs, the operator owns all.

Redis credentials are the keys to the fleet: whoever may write a job record, a release
or a lease can run anything as anyone. So each role gets its own Redis user (Redis 6+):

- ``producer``: publishes ``wasmjob.run`` messages, reads job records, results, the
  registry and usage, sends Celery control commands (revoke, ping) and uploads releases
  for a worker to verify (``{prefix}:upload:*``). It cannot write records, releases,
  owners, leases, checkpoints or key-value data.
- ``worker``: every key, no administrative commands.
- ``default``: the operator (``requirepass``), for ``wasmjob publishers``/``owners``.

``wasmjob acl`` prints these rules as an ACL file, or as ``redis-server`` arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from .settings import Settings

# administrative commands no fleet process needs; the operator's user keeps them
WORKER_DENIED = (
    "-flushall", "-flushdb", "-config", "-shutdown", "-debug", "-acl", "-module", "-replicaof", "-slaveof",
    "-monitor", "-save", "-bgsave", "-bgrewriteaof", "-failover", "-cluster", "-swapdb", "-migrate", "-restore",
)


@dataclass(frozen=True)
class AclUser:
    """One Redis user: its name, password and rules (key patterns, channels, commands)."""

    name: str
    password: str
    rules: tuple[str, ...]

    def tokens(self) -> list[str]:
        return [self.name, "on", f">{self.password}", *self.rules]

    def line(self) -> str:
        return "user " + " ".join(self.tokens())


def producer_rules(settings: Settings) -> tuple[str, ...]:
    """What a producer may touch: kombu's bindings and its own reply queues, Celery results,
    the fleet's records, registry and policy (read only), uploads; and the queue lists only to push
    (a selector), so it can neither read nor take other producers' messages."""
    p, q = settings.prefix, settings.queue
    return (
        "resetkeys",
        "~_kombu.binding*",                  # exchange bindings: declared and read when publishing
        "~*.reply.celery.pidbox*",           # replies to control commands this producer sent
        "%R~celery-task-meta-*",             # results, read only
        f"%R~{p}:job:*", f"%R~{p}:jobs", f"%R~{p}:ext:*", f"%R~{p}:module:*", f"%R~{p}:usage*",
        f"%R~{p}:policy",                    # the fleet's policy, to check manifests before upload
        f"~{p}:upload:*",                    # releases waiting for a worker to verify them
        "resetchannels",
        "&celery-task-meta-*", "&/*.celery.pidbox", "&/*.celeryev/*",
        "+@all", "-@dangerous", "+info",
        f"(~{q} ~{q}[^:]* +lpush +llen)",     # the queue and its priority lists: push only
    )


def worker_rules() -> tuple[str, ...]:
    return ("resetkeys", "~*", "resetchannels", "&*", "+@all", *WORKER_DENIED)


def fleet_users(settings: Settings, *, producer_password: str, worker_password: str) -> list[AclUser]:
    """The producer and worker users of a fleet described by ``settings``."""
    return [
        AclUser("producer", producer_password, producer_rules(settings)),
        AclUser("worker", worker_password, worker_rules()),
    ]


def acl_file(users: list[AclUser], *, admin_password: str) -> str:
    """An ACL file (``aclfile`` in redis.conf): the operator as ``default``, then the roles."""
    admin = AclUser("default", admin_password, ("~*", "&*", "+@all"))
    return "\n".join(u.line() for u in (admin, *users)) + "\n"


def server_args(users: list[AclUser]) -> list[str]:
    """The same users as ``redis-server`` command-line arguments (``--user name on >pw ...``)."""
    out: list[str] = []
    for user in users:
        out += ["--user", *user.tokens()]
    return out
