"""What each Lua script takes, by name: one dataclass a script, its keys and its arguments.

A contract's fields typed :data:`Key` become the script's KEYS, in field order; the Lua
script names them with ``named_keys('job', 'lease', ...)`` in that same order. Every other
field goes in one msgpack map, ARGV[1], which the script reads as ``A.<field>``
(``A = args()``). ``tests/unit/test_lua_contracts.py`` checks both sides agree, so a
renamed or missing field fails a unit test instead of an integration run.

Values are str, int, bytes or lists of str. Floats go as ``repr`` strings: Redis would
write a Lua number with 17 digits (0.1 becomes 0.10000000000000001).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from operator import attrgetter
from typing import Any, ClassVar, TypeAlias, TypeVar, dataclass_transform

import msgpack

Key: TypeAlias = str
"""A Redis key the script touches (goes in KEYS so Redis knows it); marks the field as a key."""

C = TypeVar("C", bound="Contract")


class Contract:
    """Base of the script contracts; :func:`contract` fills the class variables."""

    __slots__ = ()
    SCRIPT: ClassVar[str]
    KEY_NAMES: ClassVar[tuple[str, ...]]
    ARG_NAMES: ClassVar[tuple[str, ...]]
    OPTIONAL_KEYS: ClassVar[bool]
    _keys_of: ClassVar[Callable[[Any], tuple[Any, ...]]]
    _args_of: ClassVar[Callable[[Any], tuple[Any, ...]]]

    def encoded(self) -> tuple[list[str], bytes]:
        """(KEYS, ARGV[1]): the keys in declared order (a trailing None key is left out), the arguments as a map."""
        cls = type(self)
        keys = cls._keys_of(self)
        argv = _packer().pack(dict(zip(cls.ARG_NAMES, cls._args_of(self))))
        return [k for k in keys if k is not None] if cls.OPTIONAL_KEYS else list(keys), argv


_local = threading.local()


def _packer() -> msgpack.Packer:
    """This thread's msgpack packer (one a thread: a Packer is not thread-safe, and making one costs).

    Strings and bytes both go as msgpack raw strings: Redis's cmsgpack does not read the bin types.
    """
    try:
        return _local.packer  # type: ignore[no-any-return]
    except AttributeError:
        _local.packer = msgpack.Packer(use_bin_type=False)
        return _local.packer  # type: ignore[no-any-return]


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    if not names:
        return lambda _obj: ()
    get = attrgetter(*names)
    return (lambda obj: (get(obj),)) if len(names) == 1 else get


@dataclass_transform()
def contract(script: str) -> Callable[[type[C]], type[C]]:
    """Make ``cls`` the dataclass contract of ``lua/<script>.lua``."""

    def wrap(cls: type[C]) -> type[C]:
        made = dataclasses.dataclass(slots=True)(cls)
        fields = dataclasses.fields(made)  # type: ignore[arg-type]
        keys = tuple(f.name for f in fields if f.type in ("Key", "Key | None"))
        args = tuple(f.name for f in fields if f.name not in keys)
        made.SCRIPT, made.KEY_NAMES, made.ARG_NAMES = script, keys, args
        made.OPTIONAL_KEYS = any(f.type == "Key | None" for f in fields)
        made._keys_of, made._args_of = staticmethod(_getter(keys)), staticmethod(_getter(args))  # type: ignore[assignment]
        return made

    return wrap


# leases --------------------------------------------------------------------------------


@contract("acquire")
class Acquire(Contract):
    job: Key
    lease: Key
    owner: str
    ttl_ms: int


@contract("renew")
class Renew(Contract):
    lease: Key
    ext_running: Key | None
    token: int
    owner: str  # the lease must be exactly "<token>|<owner>": a token number issued again is not enough
    ttl_ms: int
    job_id: str


@contract("release")
class Release(Contract):
    lease: Key
    ext_running: Key | None
    token: int
    owner: str
    job_id: str


# checkpoints and progress -----------------------------------------------------------------


@contract("checkpoint")
class Checkpoint(Contract):
    job: Key
    lease: Key
    state: Key
    logs_key: Key
    warnings_key: Key
    staging: Key
    token: int
    owner: str  # the run's lease owner: the script compares the whole lease value
    mode: str  # 'state' (commit the staged bytes) or 'progress'
    max_state_bytes: int
    progress: str  # repr of a float, '' = unchanged
    has_message: bool
    message: str
    items_delta: int
    bytes_delta: int
    logs_kept: int
    warnings_kept: int
    logs: list[str]  # JSON lines
    warnings: list[str]


# records ----------------------------------------------------------------------------------


@contract("create")
class Create(Contract):
    job: Key
    jobs: Key
    outbox: Key
    queued: Key  # queued jobs whose message should be in the broker, by when queued (the sweep's lost-message check)
    events: Key
    job_id: str
    dispatch: int
    enqueue: bool
    grace_ms: int
    fields: list[Any]  # field, value, field, value ... stored in the record as given


@contract("claim")
class Claim(Contract):
    job: Key
    lease: Key
    active: Key
    outbox: Key
    queued: Key
    ext_running: Key
    ext_waiting: Key
    events: Key
    state: Key
    owner: str
    ttl_ms: int
    dispatch: int
    ext_id: str
    wait_ms: int
    job_id: str
    effective_limits: str  # JSON the record shows as the run's limits; '' leaves them as they are
    limit_notes: str


@contract("finish")
class Finish(Contract):
    job: Key
    lease: Key
    active: Key
    outbox: Key
    queued: Key
    ext_running: Key
    ext_waiting: Key
    events: Key
    usage: Key
    usage_index: Key
    state: Key
    logs_key: Key
    warnings_key: Key
    result_key: Key
    expiring: Key
    snapshot_a: Key  # snapshot mode's full snapshots expire with the state
    snapshot_b: Key
    celery_result: Key | None  # Celery's result key of the submitter's task id; None: results live elsewhere
    token: int
    owner: str  # the run's lease owner: the script compares the whole lease value
    kind: str  # 'completed' | 'failed' | 'interrupted' | 'retry'
    result: str  # JSON, '' when there is none
    inline_result_bytes: int  # a longer result goes to result_key instead of the record
    error: str
    delay_ms: int
    max_stalls: int
    fuel: int
    wall_seconds: str  # repr of a float
    cpu_seconds: str  # repr of a float
    peak_memory: int
    usage_member: str
    job_id: str
    grace_ms: int
    detail: str
    retain_ms: int  # how long a finished job is kept, unless its record says (retain_ms)
    max_retain_ms: int
    result_expires_ms: int


@contract("recover")
class Recover(Contract):
    job: Key
    lease: Key
    active: Key
    outbox: Key
    queued: Key
    ext_running: Key
    ext_waiting: Key
    events: Key
    state: Key
    logs_key: Key
    warnings_key: Key
    result_key: Key
    expiring: Key
    snapshot_a: Key  # snapshot mode's full snapshots expire with the state
    snapshot_b: Key
    celery_result: Key | None
    max_stalls: int
    job_id: str
    retain_ms: int
    max_retain_ms: int
    grace_ms: int
    result_expires_ms: int


@contract("redispatch")
class Redispatch(Contract):
    job: Key
    outbox: Key
    queued: Key
    events: Key
    job_id: str
    dispatch: int
    grace_ms: int
    why: str  # what happened to the old dispatch's message, for the record's message and the event


@contract("control")
class Control(Contract):
    job: Key
    outbox: Key
    queued: Key
    events: Key
    ext_waiting: Key
    state: Key
    logs_key: Key
    warnings_key: Key
    result_key: Key
    expiring: Key
    snapshot_a: Key  # snapshot mode's full snapshots expire with the state
    snapshot_b: Key
    celery_result: Key | None
    action: str  # 'pause' | 'resume' | 'cancel'
    job_id: str
    grace_ms: int
    retain_ms: int
    max_retain_ms: int
    result_expires_ms: int


@contract("outbox_take")
class OutboxTake(Contract):
    outbox: Key
    grace_ms: int
    max_entries: int


@contract("outbox_ack")
class OutboxAck(Contract):
    outbox: Key
    job: Key
    job_id: str
    dispatch: int


# the registry -------------------------------------------------------------------------------


@contract("register")
class Register(Contract):
    versions: Key
    ext_ids: Key
    module: Key
    module_meta: Key
    release: Key
    owners: Key
    publishers: Key
    id: str
    version: str
    digest: str
    module_bytes: bytes
    manifest_json: str
    jobs_json: str
    size: int
    publisher: str
    signature: str
    registration: str


@contract("kv_set")
class KvSet(Contract):
    kv: Key
    usage: Key
    key: str
    value: str
    max_bytes: int  # per (tenant, extension) scope: keys plus values
    max_keys: int


CONTRACTS: tuple[type[Contract], ...] = (
    Acquire, Renew, Release, Checkpoint, Create, Claim, Finish, Recover, Redispatch, Control, OutboxTake, OutboxAck, Register,
    KvSet,
)
