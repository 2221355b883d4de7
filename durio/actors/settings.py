"""How a runtime is configured, and the counters it keeps (a module of its own: the actors' ports name them)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from durio.sdk.options import Backoff, DEFAULT_INVOCATION_BACKOFF

DAY_MS = 24 * 3600 * 1000


@dataclass
class RuntimeStats:
    """Counters since start, for /metrics."""

    created: int = 0
    completed_success: int = 0
    completed_failure: int = 0
    journal_appends: int = 0
    attempt_failures: int = 0


@dataclass
class RuntimeConfig:
    # Suspend a waiting invocation (drop its coroutine) after this long; None never suspends.
    suspend_after_s: float | None = 1.0
    # How long a completed invocation is kept (Restate's default-journal-retention), and the same for
    # idempotent invocations and workflow runs (default-idempotency- and -workflow-completion-retention;
    # None: retention_ms). A handler's or service's own retention wins over these.
    retention_ms: int = DAY_MS
    idempotency_retention_ms: int | None = None
    workflow_retention_ms: int | None = None
    # How long a remote deployment may send nothing during an attempt before it is abandoned: Restate's
    # [worker.invoker] inactivity-timeout plus abort-timeout (a handler's manifest may set its own).
    remote_inactivity_timeout_s: float = 60.0
    remote_abort_timeout_s: float = 60.0
    # Forget completed invocations when their retention ends. Off only in tests on a virtual clock,
    # where time leaps to the next timer whenever every task waits (even on a storage thread).
    purge_completed: bool = True
    invocation_backoff: Backoff = field(default_factory=lambda: DEFAULT_INVOCATION_BACKOFF)
    # fsync every commit; only tests of pure logic turn it off.
    sync: bool = True
    # Fault injection for tests (a durio.actors.faults.FaultPlan); None in production.
    faults: typing.Any = None
    # The LMDB map's starting size; it doubles whenever it fills up. None: storage's default.
    map_size: int | None = None
    # Timers and recovery bring stored invocations back into memory only while fewer than this many
    # actors are alive: a wave of due timers is worked through a bounded set at a time, not all at once.
    resume_limit: int = 1000
    # A CA file whose certificates https:// deployments may also be signed by (besides the system's).
    deployment_ca_file: str | None = None
    # Signs every request to a remote deployment (a durio.protocol.identity.RequestSigner, loaded from
    # Restate's request-identity-private-key-pem-file); None sends them unsigned.
    request_identity_key: typing.Any = None
    # A durio.telemetry.spans.Tracing to use instead of what the environment configures (tests).
    tracing: typing.Any = None
    # The wall-clock time (epoch seconds) the runtime's clock reads at start; None: the real time. Tests on a
    # virtual clock set it to put a schedule before a daylight-saving change.
    clock_start_s: float | None = None
    # Tests only: cut the key space into this many partitions inside one process, and send everything that
    # crosses partitions as messages, as between workers (so the crash matrix reaches the message path).
    message_partitions: int | None = None
    # A cluster node's PostgreSQL (a durio.storage.recording.Durability, from durio.cluster): every batch is
    # shipped there before it commits locally. None: the local store is the truth.
    durability: typing.Any = None
