"""Every Redis key wasmjob uses, in one place, so the data layout reads at a glance.

All keys start with a prefix (``wasmjob`` unless configured), so one Redis can
hold several fleets. Lua scripts never build keys: Python passes them in.

Jobs
  {p}:job:{id}                 hash    the job record (see ``records.py`` for its fields)
  {p}:job:{id}:state           string  bytes of the last successful checkpoint
  {p}:job:{id}:state:staging:{token}
                               string  a checkpoint's bytes on their way in (plain SET with a TTL);
                                       the fenced commit script RENAMEs it onto :state or DELs it
  {p}:job:{id}:state:base:{slot}
                               string  snapshot mode: a full snapshot (slots a and b, alternating) that the
                                       delta in :state builds on; written by the same fenced commit script
  {p}:job:{id}:lease           string  "<token>|<owner>", expires after the lease TTL
  {p}:job:{id}:logs            list    JSON log lines, trimmed to the newest N
  {p}:job:{id}:warnings        list    warning texts, trimmed to the newest N
  {p}:job:{id}:events          list    JSON lifecycle events (claimed, checkpoint-resumed, lost, completed ...)
  {p}:job:{id}:result          string  a completed job's result JSON when larger than the inline limit
  {p}:jobs                     zset    every job id, scored by creation time (ms); cursor pages walk it
  {p}:expiring                 zset    ids of finished jobs, scored by when their keys expire (ms); the
                                       sweep prunes them from {p}:jobs once that time passed
  {p}:active                   set     ids of jobs whose status is ``running`` (the recovery sweep scans it)
  {p}:outbox                   zset    job ids whose next message is due, scored by due time (ms)
  {p}:queued                   zset    ids of queued jobs, scored by when they were queued (ms), or last looked
                                       at by the sweep, which re-sends one whose message is provably gone

Extensions
  {p}:ext:ids                  set     every extension id ever registered
  {p}:ext:{id}:versions        hash    version -> "sha256:<hex>" (an id@version never changes)
  {p}:ext:{id}:v:{version}     hash    digest, manifest JSON, jobs JSON, size, added_at, publisher key, signature
  {p}:ext:{id}:latest          string  the version a bare id resolves to (resolving it reads no version list)
  {p}:ext:{id}:owners          set     public keys (base64 Ed25519) that may publish versions of the id
  {p}:publishers               hash    public key -> name, for keys the operator registered (closed registration)
  {p}:upload:{id}              string  a signed release a producer left for a worker to verify (msgpack, TTL)
  {p}:ext:{id}:running         zset    job ids holding a lease, scored by lease expiry (concurrency)
  {p}:ext:{id}:waiting         zset    job ids waiting for a free slot, scored by arrival
  {p}:module:{hex}             string  module bytes, addressed by their SHA-256
  {p}:module:{hex}:meta        hash    id and version it was first registered as, size, added_at
  {p}:modules:refused          hash    hex digest -> why workers refuse to compile it (operator policy)

Usage, key-value, fleet
  {p}:usage                    set     "<extension id>|<tenant>" pairs with usage
  {p}:usage:{ext}|{tenant}     hash    runs, fuel, wall_seconds, completed, failed, cancelled, abandoned
  {p}:kv:{namespace}           hash    an extension's key-value pairs; namespace = "<tenant>:<extension>"
  {p}:kvusage:{namespace}      hash    bytes, keys: what that scope holds, against the operator's quota
  {p}:policy                   string  the operator policy the fleet's workers run with (JSON, written by each
                                       worker when it starts): producers check manifests against it
  {p}:metrics                  hash    fleet-wide counters only a worker process knows (cache hits, compiles,
                                       compile seconds, refused writes, recoveries): fleet/metrics.py
  {p}:sweep:lock               string  held by the worker running the recovery sweep
  {p}:replication:probe        string  written just before a WAIT for replicas (WASMJOB_CHECKPOINT_REPLICAS)
  {p}:worker:{name}:stopping   string  set while a worker shuts down: its jobs checkpoint and move

Celery's (no prefix: the Redis result backend's own layout, written by the scripts that end a job)
  celery-task-meta-{task id}   string  the JSON result of a submitter's task id; also PUBLISHed on
                                       the channel of the same name, where AsyncResult.get() listens
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "wasmjob"
CELERY_RESULT_PREFIX = "celery-task-meta-"  # celery.backends.base.KeyValueStoreBackend.task_keyprefix


@dataclass(frozen=True)
class Keys:
    """Builds every key for one key prefix."""

    prefix: str = DEFAULT_PREFIX

    # jobs -------------------------------------------------------------------

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def state(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:state"

    def staging(self, job_id: str, token: int) -> str:
        return f"{self.prefix}:job:{job_id}:state:staging:{token}"

    def snapshot_base(self, job_id: str, slot: str) -> str:
        return f"{self.prefix}:job:{job_id}:state:base:{slot}"

    def lease(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:lease"

    def logs(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:logs"

    def warnings(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:warnings"

    def events(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:events"

    def result(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:result"

    @property
    def jobs(self) -> str:
        return f"{self.prefix}:jobs"

    @property
    def expiring(self) -> str:
        return f"{self.prefix}:expiring"

    @property
    def active(self) -> str:
        return f"{self.prefix}:active"

    @property
    def outbox(self) -> str:
        return f"{self.prefix}:outbox"

    @property
    def queued(self) -> str:
        return f"{self.prefix}:queued"

    # extensions -------------------------------------------------------------

    @property
    def ext_ids(self) -> str:
        return f"{self.prefix}:ext:ids"

    def ext_versions(self, ext_id: str) -> str:
        return f"{self.prefix}:ext:{ext_id}:versions"

    def ext_release(self, ext_id: str, version: str) -> str:
        return f"{self.prefix}:ext:{ext_id}:v:{version}"

    def ext_owners(self, ext_id: str) -> str:
        return f"{self.prefix}:ext:{ext_id}:owners"

    @property
    def publishers(self) -> str:
        return f"{self.prefix}:publishers"

    def upload(self, upload_id: str) -> str:
        return f"{self.prefix}:upload:{upload_id}"

    def ext_latest(self, ext_id: str) -> str:
        return f"{self.prefix}:ext:{ext_id}:latest"

    def ext_running(self, ext_id: str) -> str:
        return f"{self.prefix}:ext:{ext_id}:running"

    def ext_waiting(self, ext_id: str) -> str:
        return f"{self.prefix}:ext:{ext_id}:waiting"

    def module(self, hex_digest: str) -> str:
        return f"{self.prefix}:module:{hex_digest}"

    def module_meta(self, hex_digest: str) -> str:
        return f"{self.prefix}:module:{hex_digest}:meta"

    @property
    def modules_refused(self) -> str:
        return f"{self.prefix}:modules:refused"

    # usage, kv, fleet ---------------------------------------------------------

    @property
    def usage_index(self) -> str:
        return f"{self.prefix}:usage"

    def usage(self, ext_id: str, tenant: str) -> str:
        return f"{self.prefix}:usage:{usage_member(ext_id, tenant)}"

    def kv(self, namespace: str) -> str:
        return f"{self.prefix}:kv:{namespace}"

    def kv_usage(self, namespace: str) -> str:
        return f"{self.prefix}:kvusage:{namespace}"

    @property
    def policy(self) -> str:
        return f"{self.prefix}:policy"

    @property
    def metrics(self) -> str:
        return f"{self.prefix}:metrics"

    @property
    def replication_probe(self) -> str:
        return f"{self.prefix}:replication:probe"

    @property
    def sweep_lock(self) -> str:
        return f"{self.prefix}:sweep:lock"

    def worker_stopping(self, worker_name: str) -> str:
        return f"{self.prefix}:worker:{worker_name}:stopping"

    @staticmethod
    def celery_result(task_id: str) -> str:
        """The Redis result backend's key (and channel) of ``task_id``."""
        return f"{CELERY_RESULT_PREFIX}{task_id}"


def usage_member(ext_id: str, tenant: str) -> str:
    """The member of the usage index for one (extension, tenant) pair."""
    return f"{ext_id}|{tenant}"
