"""Group commit: one writer task turns many actors' writes into one transaction and one fsync.

Actors submit operations (functions of a `Txn`) without blocking. The writer
takes everything queued, commits it in a worker thread, then, back on the Trio
loop and in submission order, hands each op's outcome to its `on_commit`
callback and wakes whoever waits on its ticket. Callbacks run even when the
submitter has gone away (a client hung up), so what a committed write implies
(start the callee, arm the timer) always happens.

An op must act only through its transaction and return a value: it may run
twice if the map has to grow, and any effect outside storage belongs in its
`on_commit` callback.
"""

from __future__ import annotations

import logging
import typing

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread

from durio.storage.lmdb_store import LmdbStore, OpFailed, StorageError, StoreClosed
from durio.storage.txn import Txn

log = logging.getLogger("durio.storage")

Op = typing.Callable[[Txn], typing.Any]
OnCommit = typing.Callable[[typing.Any], None]
OnError = typing.Callable[[BaseException], None]

MAX_BATCH = 2048
LINGER_CHECKPOINTS = 2


class Ticket:
    """A submitted op's outcome, available once its batch is durable."""

    __slots__ = ("op", "on_commit", "on_error", "outcome", "error", "_done")

    def __init__(self, op: Op, on_commit: OnCommit | None, on_error: OnError | None = None) -> None:
        self.op = op
        self.on_commit = on_commit
        self.on_error = on_error
        self.outcome: typing.Any = None
        self.error: BaseException | None = None
        self._done = anyio.Event()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    async def wait(self) -> typing.Any:
        """The op's return value once durable; raises what the op (or storage) raised."""
        await self._done.wait()
        if self.error is not None:
            raise self.error
        return self.outcome

    def _finish(self, outcome: typing.Any, error: BaseException | None) -> None:
        self.outcome = outcome
        self.error = error
        self._done.set()
        if error is not None and self.on_error is not None:
            try:
                self.on_error(error)
            except Exception:
                log.exception("an on-error callback failed")


class WriterStatistics(typing.NamedTuple):
    queued: int
    batches: int
    ops: int
    largest_batch: int


class GroupCommitWriter:
    """The single writer of the store."""

    def __init__(self, store: LmdbStore) -> None:
        self._store = store
        self._queue: list[Ticket] = []
        self._wakeup = anyio.Event()
        self._batches = 0
        self._ops = 0
        self._largest = 0
        self._closed = False
        self.faults: typing.Any = None  # a FaultPlan in fault-injection tests
        self.halted = False  # after an injected crash nothing more becomes durable
        # Runs inside every batch's transaction, after its ops (in the writer thread).
        self.before_commit: typing.Callable[[Txn], None] | None = None

    def submit(self, op: Op, on_commit: OnCommit | None = None, on_error: OnError | None = None) -> Ticket:
        """Queue an op for the next batch; never blocks."""
        ticket = Ticket(op, on_commit, on_error)
        if self._closed or self.halted:
            ticket._finish(None, StoreClosed("the store is shut down"))
            return ticket
        self._queue.append(ticket)
        self._wakeup.set()
        return ticket

    async def write(self, op: Op, on_commit: OnCommit | None = None) -> typing.Any:
        """Submit and wait until durable."""
        return await self.submit(op, on_commit).wait()

    def halt(self) -> None:
        """Stop committing, as if the process had died: queued writes never become durable."""
        self.halted = True

    def statistics(self) -> WriterStatistics:
        return WriterStatistics(len(self._queue), self._batches, self._ops, self._largest)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        batch: list[Ticket] = []
        try:
            while True:
                if not self._queue:
                    self._wakeup = anyio.Event()
                    await self._wakeup.wait()
                # Let the tasks that are ready now submit too, so that their writes share this
                # commit: a call created and completed in one tick costs one fsync, not two.
                for _ in range(LINGER_CHECKPOINTS):
                    await anyio.lowlevel.cancel_shielded_checkpoint()
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                # The thread cannot be abandoned: a batch either commits or fails as a whole.
                with anyio.CancelScope(shield=True):
                    await self._commit(batch)
                batch = []
        finally:
            self._closed = True
            error = StoreClosed("the store shut down before this write was committed")
            for ticket in batch + self._queue:
                if not ticket.done:
                    ticket._finish(None, error)

    async def _commit(self, batch: list[Ticket]) -> None:
        if self.halted:
            for ticket in batch:
                ticket._finish(None, StoreClosed("the store is halted"))
            return
        if self.faults is not None:
            self.faults.hit("commit.before")
        try:
            outcomes = await anyio.to_thread.run_sync(self._store.commit_batch, [t.op for t in batch], self.before_commit)
        except StorageError as exc:
            log.error("a batch of %d writes failed: %s", len(batch), exc)
            for ticket in batch:
                ticket._finish(None, exc)
            return
        self._batches += 1
        self._ops += len(batch)
        self._largest = max(self._largest, len(batch))
        if self.faults is not None:
            self.faults.hit("commit.after")
        for ticket, outcome in zip(batch, outcomes):
            if isinstance(outcome, OpFailed):
                log.warning("a write failed and was rolled back: %r", outcome.error)
                ticket._finish(None, outcome.error)
                continue
            if ticket.on_commit is not None:
                try:
                    ticket.on_commit(outcome)
                except Exception:  # a bug in a callback must not stop the writer
                    log.exception("an on-commit callback failed")
            ticket._finish(outcome, None)
