"""The invocation actor: one task that owns one invocation's journal.

It loads the invocation, runs its attempts (in process: durio.actors.local_attempt;
at a deployment: durio.actors.remote.attempt), moves arriving notifications into
the journal and makes its writes durable, and decides what an attempt's end
means: complete, suspend, or retry as durio.actors.retry says. Only this actor
appends to its invocation's journal, so journal indexes are assigned in one
place, synchronously.

While the handler waits for something that is not a running step (a timer,
a call, an awakeable, a promise) for longer than `suspend_after_s` (or the
handler's or its service's `inactivity_timeout`), the actor suspends it: the coroutine is dropped, the invocation is marked
suspended, and the actor exits. A later notification starts a new actor
that replays the journal. Waiting therefore costs storage, not memory.
"""

from __future__ import annotations

import enum
import functools
import logging
import typing

import anyio

from durio.actors import retry
from durio.actors.local_attempt import LocalAttempt
from durio.actors.ports import ActorHost, Op
from durio.actors.retry import AttemptFailure
from durio.actors.transitions import STALE_JOURNAL
from durio.journal import entries as e
from durio.journal.machine import InvocationMachine
from durio.actors.remote.attempt import RemoteFailure, RemoteFailures, remote_attempt
from durio.sdk.attempt import Wakeup
from durio.sdk.definitions import Handler
from durio.sdk.errors import SuspendedException
from durio.sdk.invoke import NOT_DECODED
from durio.storage.records import InvocationRecord, Status, TimerKey
from durio.storage.writer import Ticket


log = logging.getLogger("durio.invocation")


class LiveStatus(str, enum.Enum):
    LOADING = "loading"
    RUNNING = "running"
    BACKING_OFF = "backing-off"
    SUSPENDING = "suspending"
    DONE = "done"


class _StorageWriteFailed(Exception):
    pass


class _StaleJournal(Exception):
    """Storage holds journal entries the actor's journal in memory lacks: it must reload."""


class InvocationActor:
    def __init__(
        self,
        runtime: ActorHost,
        invocation_id: str,
        record: InvocationRecord | None = None,
        journal: list[e.Entry] | None = None,
        state: dict[str, bytes] | None = None,
        admitted: bool = False,
        decoded_input: typing.Any = NOT_DECODED,
    ) -> None:
        self.runtime = runtime
        self.id = invocation_id
        self.record = typing.cast(InvocationRecord, record)
        self._journal = journal
        self.machine: InvocationMachine = typing.cast(InvocationMachine, None)
        self.handler: Handler = typing.cast(Handler, None)
        # The object's state as this invocation sees it; handed over by the key's previous holder when it has it.
        self.state: dict[str, bytes] = state if state is not None else {}
        self._state_given = state is not None
        self.handed_off = False
        # It ended because its last read of storage had it queued behind its key's holder (see Router).
        self.waits_for_turn = False
        self._decoded_input = decoded_input  # the ingress decoded the input already: the first attempt uses it
        self.status = LiveStatus.LOADING
        self.scope = anyio.CancelScope()
        self._early: list[tuple[e.Notification, int | None, TimerKey | None]] = []
        # Timer notifications appended but not yet durable. A reload after a failed write takes them again: the
        # timer actor popped them from its window, and a refire that came while this copy was in memory was dropped.
        self._undurable_timers: dict[TimerKey, e.Notification] = {}
        # Outbox messages appended but not yet durable, by outbox seq: handed back if this actor ends first.
        self._undurable_messages: dict[int, e.Notification] = {}
        self._delivered = False
        # Wakes the invocation's waiters: a notification became durable, a step ended, an attempt ended.
        self._wakeup = Wakeup()
        self._local_attempt: LocalAttempt | None = None  # the in-process attempt running now
        self._last_ticket: Ticket | None = None
        self._write_error: BaseException | None = None
        self._step_failures = retry.StepFailures()  # steps with their own retry policy: their failures so far
        self.awaiting: list[int] = []  # the handles a suspending invocation waits for
        self.remote_failures = RemoteFailures()  # failed remote attempts since the journal last grew
        self._run_requested = admitted  # its key actor admitted it ahead of storage saying so
        self._backoff_scope: anyio.CancelScope | None = None
        # With tracing on (durio.telemetry): the current attempt's span, and the headers of the attempt
        # (the invocation's, with the attempt's traceparent) that ctx.request().attempt_headers shows.
        self.trace_attempt: typing.Any = None
        self.attempt_headers: dict[str, str] | None = None

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """The actor's task. Deregisters itself synchronously as it ends (see Router)."""
        try:
            with self.scope:
                await self._serve()
        except _NotMyTurn:
            log.info("invocation %s does not hold its key yet; it waits for its turn", self.id)
            self.waits_for_turn = True
        finally:
            self.status = LiveStatus.DONE
            self.runtime.router.actor_exited(self)
            self._hand_back_unstored_deliveries()

    def _hand_back_unstored_deliveries(self) -> None:
        """Deliveries this actor took but never stored go back where they came from.

        An actor can end (crash and restart, suspend) while the append of a wake-up or
        a message is refused by a full disk. The timer actor had popped the timer and the
        outbox message had been handed over, so nothing would deliver them again before
        a restart. Delivering one twice is harmless: the journal takes a handle once.
        """
        if self.scope.cancel_called:
            return  # stopped (killed, or the runtime shuts down): nothing more runs for it here
        for timer in self._undurable_timers:
            self.runtime.timers.add(timer)
        self._undurable_timers = {}
        messages, self._undurable_messages = self._undurable_messages, {}
        for outbox_seq, notification in messages.items():
            try:
                self.runtime.router.deliver(self.id, notification, outbox_seq=outbox_seq)
            except RuntimeError:  # the supervisor's nursery is closing: recovery redelivers it
                return

    def describe(self) -> str:
        """What this actor is doing, for the shutdown log (a stuck invocation shows where it stands)."""
        machine = self.machine
        journal = (
            "not loaded"
            if machine is None
            else (
                f"journal {len(machine.entries)} entries, {machine.durable_length} durable, "
                f"unconsumed notifications: {machine.has_unconsumed_notifications()}"
            )
        )
        return (
            f"{self.id} {self.status.value}; {journal}; awaiting {self.awaiting}; write error {self._write_error!r}; "
            f"unstored deliveries {len(self._undurable_messages) + len(self._undurable_timers)}; early {len(self._early)}"
        )

    def stop(self) -> None:
        """Stop at once (kill, or shutdown); nothing more is written."""
        self.scope.cancel()

    @property
    def last_ticket(self) -> Ticket | None:
        return self._last_ticket

    def run_requested(self) -> None:
        """Someone made this invocation ready (resumed it): run, or stop waiting out a backoff."""
        self._run_requested = True
        if self.status == LiveStatus.BACKING_OFF and self._backoff_scope is not None:
            self._backoff_scope.cancel()

    async def _serve(self) -> None:
        if self.record is None or self._journal is None:
            await self.runtime.router.wait_for_predecessor(self.id)
            loaded = await self.runtime.load_invocation(self.id)
            if loaded is None:
                self._discard_early()
                return
            self.record, self._journal = loaded
        if self.record.is_completed:
            self._discard_early()
            return
        self.machine = InvocationMachine(self._journal)
        self._journal = None
        early, self._early = self._early, []
        for notification, outbox_seq, timer in early:
            self.append_notification(notification, outbox_seq, timer)
        status = self.record.status
        # A paused invocation keeps what arrives (a timer firing, a result) for when it is resumed.
        runnable = (
            status in (Status.READY, Status.BACKING_OFF)
            or (status in (Status.SUSPENDED, Status.PENDING) and (self._delivered or self._run_requested))
            or (status == Status.PAUSED and self._run_requested)
        )
        if not runnable:
            await self._flush_writes()
            if not self._run_requested:
                self.waits_for_turn = status == Status.PENDING
                return
        handler = self.runtime.registry.handler_for(self.record.target)
        if handler is None:
            await self._retry_forever_missing_handler()
            return
        self.handler = handler
        if self.record.status == Status.BACKING_OFF and self.record.next_retry_ms > self.now_ms() and not self._run_requested:
            self.status = LiveStatus.BACKING_OFF
            with anyio.CancelScope() as self._backoff_scope:
                await self.runtime.clock.sleep_until_ms(self.record.next_retry_ms)
            self._backoff_scope = None
        if handler.service_kind != "service" and not self._state_given:
            target = self.record.target
            self.state = await self.runtime.store.read(lambda txn: txn.state_of(target.service, typing.cast(str, target.key)))
        await self._attempts()

    def _discard_early(self) -> None:
        for _, outbox_seq, timer in self._early:
            self.submit(self.runtime.transitions.discard_message(self.id, outbox_seq, timer))
        self._early.clear()

    async def _retry_forever_missing_handler(self) -> None:
        target = self.record.target
        failure = AttemptFailure(LookupError(f"no handler {target.service}.{target.handler} is registered"))
        backoff = self.runtime.config.invocation_backoff
        retry_count = self.record.retry_count
        while True:
            retry_count += 1
            delay = backoff.delay_s(retry_count)
            self._record_failure(failure, retry_count, delay, pause=False)
            self.status = LiveStatus.BACKING_OFF
            await anyio.sleep(delay)
            handler = self.runtime.registry.handler_for(target)
            if handler is not None:
                self.handler = handler
                await self._attempts()
                return

    # ------------------------------------------------------------ attempts

    async def _attempts(self) -> None:
        backoff = self.runtime.backoff_for(self.handler)
        retry_count = self.record.retry_count
        tracing = self.runtime.tracing
        while True:
            self.status = LiveStatus.RUNNING
            attempt_span = tracing.start_attempt(self, retry_count) if tracing is not None else None
            result = await (self._remote_attempt() if self.is_remote else self._attempt())
            if tracing is not None:
                tracing.end_attempt(self, attempt_span, result)
            if isinstance(result, SuspendedException):
                if await self._suspend():
                    return
                continue
            if not isinstance(result, AttemptFailure):
                await self._complete(result)
                return
            retry_count += 1
            after = retry.next_attempt(result, retry_count, backoff, self._step_failures, anyio.current_time())
            if after is retry.GIVE_UP:
                self._record_failure(result, retry_count, 0, pause=False)
                await self._complete(e.Failure(result.code, result.message))
                return
            if after is retry.PAUSE:
                self._record_failure(result, retry_count, 0, pause=True)
                await self._flush_writes()
                log.warning("invocation %s paused after %d attempts: %s", self.id, retry_count, result.message)
                return
            if isinstance(after, retry.StepExhausted):
                self.append_notification(after.completion)
            delay = after.delay_s if isinstance(after, retry.RetryAfter) else 0.0
            self._record_failure(result, retry_count, delay, pause=False)
            log.info("invocation %s attempt %d failed, retrying in %.3fs: %s", self.id, retry_count, delay, result.message)
            if delay > 0:
                self.status = LiveStatus.BACKING_OFF
                with anyio.CancelScope() as self._backoff_scope:
                    await anyio.sleep(delay)
                self._backoff_scope = None
                self.submit(self.runtime.transitions.running_again(self.id, self.now_ms()))

    def _record_failure(self, failure: AttemptFailure, retry_count: int, delay_s: float, pause: bool) -> None:
        now = self.now_ms()
        details = retry.failure_details(failure, self.machine.entries, now)
        self.record.retry_count = retry_count
        self.record.last_failure = details
        self.runtime.stats.attempt_failures += 1
        self.submit(self.runtime.transitions.attempt_failed(self.id, retry_count, details, now + int(delay_s * 1000), pause, now))

    async def _attempt(self) -> bytes | e.Failure | AttemptFailure | SuspendedException:
        """One run of the handler over the journal, in process."""
        await self._flush_writes()
        self.machine.restart()
        self._run_requested = False
        attempt = LocalAttempt(self, self.handler, self.machine, self._wakeup, self.runtime.suspend_after_for(self.handler))
        decoded, self._decoded_input = self._decoded_input, NOT_DECODED
        self._local_attempt = attempt
        try:
            return await attempt.run(decoded)
        finally:
            self._local_attempt = None

    async def _complete(self, result: bytes | e.Failure) -> None:
        machine = self.machine
        output = machine.entries[-1]
        if not isinstance(output, e.Output) or output.result is not result:
            output = e.Output(result=result)
            machine.append_command_after_replay(output)
        output.ts = self.now_ms()
        index = len(machine.entries) - 1
        self.runtime.stats.journal_appends += 1
        faults = self.runtime.faults
        if faults is not None:
            faults.hit("invocation.before_complete")
        ticket = self.submit(
            self.runtime.transitions.complete(self.id, index, output, output.ts),
            on_commit=(lambda _: faults.hit("invocation.after_complete")) if faults is not None else None,
        )
        if self.record.is_exclusive:
            # The next invocation on the key may run now: its writes queue behind this completion.
            self.handed_off = True
            self.runtime.router.handoff(self)
        with anyio.CancelScope(shield=True):
            await self._flush_writes()
        if ticket.error is not None:
            raise ticket.error
        if self.runtime.tracing is not None:
            self.runtime.tracing.end_invocation(self, result, output.ts)
        self.status = LiveStatus.DONE

    async def _suspend(self) -> bool:
        """Persist the suspension; False when a notification arrived meanwhile (run again)."""
        self.status = LiveStatus.SUSPENDING
        await self._flush_writes()
        journal_length = len(self.machine.entries)

        def something_arrived() -> bool:
            if self.is_remote:
                # What the deployment waits for may have arrived while its request was in flight or while
                # the writes above were flushed, before journal_length was taken: check for it, not only growth.
                awaited = (*self.awaiting, -e.CANCEL_SIGNAL)
                return len(self.machine.entries) != journal_length or any(self.machine.has_notification(h) for h in awaited)
            return self.machine.has_unconsumed_notifications()

        if something_arrived():
            return False
        awaiting = [self._describe_handle(h) for h in self.awaiting]
        ticket = self.submit(self.runtime.transitions.suspend(self.id, awaiting, self.now_ms(), journal_length))
        try:
            applied = await ticket.wait()
        except Exception:
            return False
        if applied.value == STALE_JOURNAL:
            self._write_error = self._write_error or _StaleJournal(
                f"the stored journal of {self.id} has entries this actor has not seen"
            )
            return False
        # No checkpoint between this check and the actor's deregistration: no wake-up is lost.
        return not (something_arrived() or self._run_requested)

    def _describe_handle(self, handle: int) -> str:
        if handle < 0:
            return "cancel signal" if -handle == e.CANCEL_SIGNAL else f"awakeable (signal {-handle})"
        for entry in self.machine.entries:
            if getattr(entry, "completion_id", None) == handle and entry.is_command:
                return entry.describe()
        return f"completion {handle}"

    def now_ms(self) -> int:
        return self.runtime.clock.now_ms()

    def _fail_attempt(self, failure: AttemptFailure) -> None:
        """Something outside the handler's code failed the in-process attempt running now (if one is)."""
        if self._local_attempt is not None:
            self._local_attempt.fail(failure)

    # ------------------------------------------------------------ remote deployments (durio.actors.remote.attempt)

    @property
    def is_remote(self) -> bool:
        return getattr(self.handler, "deployment", None) is not None

    async def _remote_attempt(self) -> bytes | e.Failure | AttemptFailure | SuspendedException:
        outcome = await remote_attempt(self)
        return AttemptFailure(outcome) if isinstance(outcome, RemoteFailure) else outcome

    async def flush_writes(self) -> None:
        await self._flush_writes()

    async def durable_growth(self) -> None:
        """Wait until another notification becomes durable (or something else wakes the invocation's waiters)."""
        await self._wakeup.next().wait()

    # ------------------------------------------------------------ notifications

    def deliver(self, notification: e.Notification, outbox_seq: int | None = None, timer: TimerKey | None = None) -> None:
        """A notification for this invocation (from the outbox or a timer)."""
        self._delivered = True
        if isinstance(notification, e.Signal) and notification.signal_index == e.CANCEL_SIGNAL:
            self.run_requested()  # a cancellation does not wait out a retry's backoff
        if self.machine is None:
            self._early.append((notification, outbox_seq, timer))
            return
        self.append_notification(notification, outbox_seq, timer)

    def append_notification(
        self, notification: e.Notification, outbox_seq: int | None = None, timer: TimerKey | None = None
    ) -> None:
        handle = e.handle_of(notification)
        if self.machine.has_notification(handle):
            if outbox_seq is not None or timer is not None:
                self.submit(self.runtime.transitions.discard_message(self.id, outbox_seq, timer, handle))
            return
        notification.ts = self.now_ms()
        index = self.machine.append_notification(notification)
        self.runtime.stats.journal_appends += 1
        if timer is not None:
            self._undurable_timers[timer] = notification
        if outbox_seq is not None:
            self._undurable_messages[outbox_seq] = notification
        if self.runtime.faults is not None:
            self.runtime.faults.hit("notification.before_durable")
        if self.runtime.tracing is not None:
            self.runtime.tracing.step_completed(self, notification)
        self.submit(
            self.runtime.transitions.append(self.id, index, notification, notification.ts, outbox_seq, timer),
            on_commit=functools.partial(self._on_notification_stored, index + 1, timer, outbox_seq, self.machine),
        )

    def _on_notification_stored(
        self, length: int, timer: TimerKey | None, outbox_seq: int | None, machine: InvocationMachine, _applied: typing.Any
    ) -> None:
        """A notification appended to `machine`'s journal is durable: the journal's first `length` entries are."""
        if timer is not None:
            self._undurable_timers.pop(timer, None)
        if outbox_seq is not None:
            self._undurable_messages.pop(outbox_seq, None)
        if self.runtime.faults is not None:
            self.runtime.faults.hit("notification.after_durable")
        if machine is not self.machine:
            # Appended to the journal a reload has replaced, and committed after the reload read storage:
            # storage holds an entry the journal in memory lacks. Reload again before going on.
            stale = _StaleJournal(f"journal entry {length - 1} of {self.id} was stored after the journal was reloaded")
            self._write_error = self._write_error or stale
            self._fail_attempt(AttemptFailure(stale))
            self._wakeup.set()
            return
        self.machine.mark_durable(length)
        self._wakeup.set()

    # ------------------------------------------------------------ writes

    def submit(self, op: Op, on_commit: typing.Callable[[typing.Any], None] | None = None) -> Ticket:
        ticket = self.runtime.commit(op, on_commit, on_error=self._on_write_error)
        self._last_ticket = ticket
        return ticket

    def _on_write_error(self, error: BaseException) -> None:
        self._write_error = error
        self._fail_attempt(AttemptFailure(_StorageWriteFailed(f"a journal write failed: {error}")))

    async def _redeliver_outbox(self) -> None:
        """After a failed write, take again what was sent to this invocation and not yet journaled.

        The failed batch may have held the append of a delivered message (a cancel
        signal, a call's result): the message is still in the outbox, but nothing
        else would deliver it again before a restart. Likewise a timer's wake-up:
        the timer is still in storage, but out of the timer actor's window.
        """
        pending = await self.runtime.store.read(lambda txn: txn.outbox_of(self.id))
        # A delivery may have come while the outbox was read, into the reloaded journal: it is tracked
        # (as undurable) by that append, and must stay tracked, so nothing here clears the trackers.
        for outbox_seq, notification in pending:
            self.append_notification(notification, outbox_seq)
        for timer, notification in list(self._undurable_timers.items()):
            if not self.machine.has_notification(e.handle_of(notification)):
                self.append_notification(notification, timer=timer)

    async def _flush_writes(self) -> None:
        """Wait until every write made so far is durable; after a failed one, reload the journal."""
        if self._last_ticket is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await self._last_ticket.wait()
                except Exception:
                    pass
        # A write refused while the journal reloads (a delivery appended to the reloaded journal) means another
        # reload: the attempt that follows must not start on a journal holding an entry that will never be stored.
        pause_s = 0.0
        while self._write_error is not None:
            if pause_s:
                await anyio.sleep(pause_s)  # storage still refuses writes: do not spin
            pause_s = min(max(pause_s * 2, 0.05), 1.0)
            self._write_error = None
            loaded = await self.runtime.load_invocation(self.id)
            if loaded is None:
                raise _StorageWriteFailed(f"{self.id} disappeared from storage")
            self.record, journal = loaded
            self.machine = InvocationMachine(journal)
            await self._redeliver_outbox()
            if self.record.status == Status.PENDING:
                # It ran ahead of its turn (handed a key its predecessor did not release): wait to be admitted.
                raise _NotMyTurn()
            if self._state_given and self.handler is not None and self.handler.service_kind != "service":
                target = self.record.target
                self.state = await self.runtime.store.read(lambda txn: txn.state_of(target.service, typing.cast(str, target.key)))


class _NotMyTurn(Exception):
    pass
