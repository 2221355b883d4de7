"""Invoking a remote deployment: one attempt of an invocation over Restate's service protocol.

The actor sends the StartMessage (with the eager state and the random seed)
and the whole journal in one request; the endpoint answers with new commands,
run results and one terminal message. Each command is persisted and performed
as it arrives, exactly as for in-process handlers. After a Suspension the
actor waits for what the endpoint waits for and invokes it again with the
grown journal; if that takes long, it suspends the invocation instead.

Each request runs under http_client limits, as Restate's invoker does: the deployment may
send nothing for its inactivity timeout plus its abort timeout (Restate's defaults, 1 min
each, or the service's or handler's own from its manifest) before the attempt is abandoned
and retried (so a `run` step that keeps the deployment silent longer is retried: give such a
service longer timeouts in its options). The
answer has no total size bound, because it is decoded and persisted frame by frame as it
arrives; each frame is bounded by framing.MAX_FRAME (the ingress's body limit plus its
envelope), the largest input or output durio accepts anyway. A failed attempt's answer is
read for at most ERROR_EXCERPT bytes, kept in its failure message (the deployment is
registered, so its words help whoever reads the failure).

The bytes themselves are durio.protocol.attempt_codec's (sans-IO): this module moves them over
HTTP/1.1 or HTTP/2 and applies what each answer frame means to the invocation actor.
"""

from __future__ import annotations

import logging
import math
import typing
from dataclasses import dataclass

import anyio

from durio import ids
from durio.actors.ports import ActorHost, Op
from durio.actors.remote import h2_client, http_client
from durio.actors.remote.deployments import RemoteHandler
from durio.journal import entries as e
from durio.journal.machine import InvocationMachine
from durio.protocol import attempt_codec
from durio.protocol.convert import completion_types, notification_to_message
from durio.protocol.framing import Frame, FrameDecoder, ProtocolError, encode
from durio.protocol.manifest import INVOCATION_CONTENT_TYPE
from durio.sdk.errors import ErrorCode, SuspendedException
from durio.storage.records import InvocationRecord, TimerKey
from durio.storage.writer import Ticket


class AttemptActor(typing.Protocol):
    """What a remote attempt needs of the invocation actor it runs for (durio.actors.invocation)."""

    runtime: ActorHost
    id: str
    record: InvocationRecord
    handler: typing.Any  # a RemoteHandler (or a local Handler, for an actor that runs in-process)
    machine: InvocationMachine
    state: dict[str, bytes]
    awaiting: list[int]
    remote_failures: RemoteFailures

    def now_ms(self) -> int: ...
    def submit(self, op: Op, on_commit: typing.Callable[[typing.Any], None] | None = None) -> Ticket: ...
    def deliver(self, notification: e.Notification, outbox_seq: int | None = None, timer: TimerKey | None = None) -> None: ...
    def append_notification(self, notification: e.Notification) -> None: ...
    async def durable_growth(self) -> None: ...
    async def flush_writes(self) -> None: ...


@dataclass
class RemoteFailures:
    """Failed remote attempts since the journal last grew (the StartMessage's retry count, as Restate counts)."""

    count: int = 0
    journal_length: int = 0  # the journal's length after the last counted failure

    def counted(self, length_before: int, length_after: int) -> None:
        """An attempt that began with `length_before` entries failed with `length_after`."""
        if length_after != length_before or self.journal_length != length_before:
            self.count = 0
        self.count += 1
        self.journal_length = length_after


HTTP_2 = "HTTP/2.0"
BIDI_STREAM = "BidiStream"

log = logging.getLogger("durio.invoker")

ERROR_EXCERPT = 300


class RemoteFailure(Exception):
    """An attempt at a remote deployment failed: an ErrorMessage, a protocol violation, or the endpoint was unreachable."""

    def __init__(
        self,
        message: str,
        code: int = 500,
        retry_after_s: float | None = None,
        entry_index: int | None = None,
        entry_name: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = code
        self.retry_after_s = retry_after_s
        self.entry_index = entry_index
        self.entry_name = entry_name


def _lazy_state_of(handler: typing.Any, service: typing.Any) -> bool:
    """Whether the deployment asked for lazy state (enableLazyState): the handler's own flag, else its service's."""
    own = handler.options.get("enable_lazy_state")
    return bool(getattr(service, "enable_lazy_state", None) if own is None else own)


async def remote_attempt(actor: AttemptActor) -> bytes | e.Failure | SuspendedException | RemoteFailure:
    """Run the invocation at its deployment until it ends, fails, or waits for long."""
    journal_length = len(actor.machine.entries)
    while True:
        await actor.flush_writes()
        outcome = await _one_request(actor)
        if isinstance(outcome, RemoteFailure):
            actor.remote_failures.counted(journal_length, len(actor.machine.entries))
        if not isinstance(outcome, list):
            return outcome
        # Suspended: invoke again as soon as anything it waits for (or a cancellation) arrives.
        if not await _wait_for_any(actor, [*outcome, -e.CANCEL_SIGNAL]):
            actor.awaiting = outcome
            return SuspendedException()


async def _wait_for_any(actor: AttemptActor, handles: typing.Collection[int]) -> bool:
    """Wait until the journal durably holds any of these; False after `suspend_after_s` of nothing."""
    suspend_after = actor.runtime.config.suspend_after_s
    deadline = None if suspend_after is None else anyio.current_time() + suspend_after
    while True:
        await actor.flush_writes()
        if any(actor.machine.has_notification(h) for h in handles):
            return True
        with anyio.CancelScope(deadline=math.inf if deadline is None else deadline) as waiting:
            await actor.durable_growth()
        if waiting.cancelled_caught:
            return False


def _record_command(actor: AttemptActor, entry: e.Entry) -> None:
    """A command a remote handler sent: check it, give calls their callee id, persist and perform it."""
    handler = actor.handler
    if isinstance(entry, (e.SetState, e.ClearState, e.ClearAllState)) and (
        handler.service_kind == "service" or handler.kind == "shared"
    ):
        raise ProtocolError(f"{entry.describe()} from {handler.service_name}.{handler.name}, which cannot write state")
    if isinstance(entry, (e.GetPromise, e.PeekPromise, e.CompletePromise)) and handler.service_kind != "workflow":
        raise ProtocolError(f"{entry.describe()} from {handler.service_name}, which is not a workflow")
    runtime = actor.runtime
    if isinstance(entry, (e.Call, e.OneWayCall)):
        if isinstance(entry, e.OneWayCall) and entry.invoke_at_ms and entry.invoke_at_ms <= actor.now_ms():
            entry.invoke_at_ms = 0
        entry.callee_id = ids.callee_invocation_id(
            entry.target, entry.idempotency_key, runtime.registry.kind_of(entry.target), actor.now_ms()
        )
        if runtime.tracing is not None:
            runtime.tracing.tag_outgoing(actor, entry)
    entry.ts = actor.now_ms()
    index = actor.machine.append_command_after_replay(entry)
    runtime.stats.journal_appends += 1
    actor.submit(runtime.transitions.append(actor.id, index, entry, entry.ts))
    state = actor.state
    if isinstance(entry, e.SetState):
        state[entry.key] = entry.value
    elif isinstance(entry, e.ClearState):
        state.pop(entry.key, None)
    elif isinstance(entry, e.ClearAllState):
        state.clear()
    elif isinstance(entry, (e.Call, e.OneWayCall)):
        actor.append_notification(e.Completion(completion_id=entry.invocation_id_completion_id, result=entry.callee_id))
    elif isinstance(entry, e.GetLazyState):
        actor.append_notification(e.Completion(completion_id=entry.completion_id, result=state.get(entry.key)))
    elif isinstance(entry, e.GetLazyStateKeys):
        actor.append_notification(e.Completion(completion_id=entry.completion_id, result=sorted(state)))


def _request_body(actor: AttemptActor, version: int) -> bytes:
    record = actor.record
    # With lazy state the deployment gets none up front and asks for each key it reads (GetLazyState), as
    # Restate does; its answers then reflect what the invocation wrote so far.
    lazy = _lazy_state_of(actor.handler, actor.runtime.registry.service(actor.handler.service_name))
    return attempt_codec.request_body(
        record.id, record.target.key, actor.machine.entries, None if lazy else actor.state, actor.remote_failures.count, version
    )


async def _one_request(actor: AttemptActor) -> bytes | e.Failure | RemoteFailure | list[int]:
    handler = actor.handler
    deployment = typing.cast(RemoteHandler, handler).deployment
    version = deployment.protocol_version
    content_type = INVOCATION_CONTENT_TYPE.format(version)
    body = _request_body(actor, version)
    headers = {
        "content-type": content_type,
        "accept": content_type,
        "x-restate-invocation-id": actor.record.id,
        **deployment.additional_headers,
    }
    if actor.runtime.tracing is not None:
        traceparent = actor.runtime.tracing.traceparent_of_attempt(actor)
        if traceparent is not None:
            headers["traceparent"] = traceparent  # the deployment's handler continues the attempt's trace
    path = f"/invoke/{handler.service_name}/{handler.name}"
    signer = actor.runtime.config.request_identity_key
    if signer is not None:
        # Signed for the path relative to the deployment's URI, as Restate signs (and the SDKs verify) it.
        headers.update(signer.headers(path))
    url = deployment.uri + path
    limits = invocation_limits(handler, actor.runtime.config)
    ca_file = actor.runtime.config.deployment_ca_file
    try:
        if deployment.http_version == HTTP_2:
            async with h2_client.stream("POST", url, headers, limits, ca_file=ca_file) as exchange:
                return await _exchange(actor, exchange, body, url, content_type, deployment.protocol_type == BIDI_STREAM)
        async with http_client.request("POST", url, headers, body, limits=limits, ca_file=ca_file) as response:
            if response.status // 100 != 2:
                text = (await response.read_at_most(ERROR_EXCERPT)).decode(errors="replace")
                return RemoteFailure(f"{url} answered {response.status}: {text}", ErrorCode.INTERNAL)
            if response.headers.get("content-type", "").strip() != content_type:
                return RemoteFailure(
                    f"{url} answered with content type {response.headers.get('content-type')!r}, expected {content_type}",
                    ErrorCode.PROTOCOL_VIOLATION,
                )
            return await _read_answer(actor, response.iter_body(), url)
    except http_client.HttpClientError as exc:
        return RemoteFailure(str(exc), 503)
    except ProtocolError as exc:
        return RemoteFailure(f"protocol violation by {deployment.uri}: {exc}", exc.code)


async def _read_answer(
    actor: AttemptActor, chunks: typing.AsyncIterator[bytes], url: str
) -> bytes | e.Failure | RemoteFailure | list[int]:
    """Apply the deployment's frames as they arrive, until its terminal message."""
    output: bytes | e.Failure | None = None
    decoder = FrameDecoder()
    async for chunk in chunks:
        for frame in decoder.feed(chunk):
            outcome = _apply_frame(actor, frame, output)
            if isinstance(outcome, attempt_codec.Output):
                output = outcome.result
            elif outcome is not None:
                return outcome
    return RemoteFailure(f"{url} closed the stream without End, Suspension or Error", ErrorCode.PROTOCOL_VIOLATION)


async def _exchange(
    actor: AttemptActor, exchange: h2_client.Exchange, body: bytes, url: str, content_type: str, streaming: bool
) -> bytes | e.Failure | RemoteFailure | list[int]:
    """One attempt over HTTP/2. Streaming (BidiStream), the request stays open: each notification that
    becomes durable meanwhile is sent on it, until the deployment ends the attempt or the stream has been
    idle for the inactivity timeout, when the request is closed and the deployment suspends (as Restate does)."""
    sent = len(actor.machine.entries)
    await exchange.send(body)
    if not streaming:
        await exchange.end()
    await exchange.response_started()
    if exchange.status // 100 != 2:
        text = (await exchange.read_at_most(ERROR_EXCERPT)).decode(errors="replace")
        return RemoteFailure(f"{url} answered {exchange.status}: {text}", ErrorCode.INTERNAL)
    if exchange.headers.get("content-type", "").strip() != content_type:
        return RemoteFailure(
            f"{url} answered with content type {exchange.headers.get('content-type')!r}, expected {content_type}",
            ErrorCode.PROTOCOL_VIOLATION,
        )
    stream = _OpenStream(actor, exchange, sent, streaming)
    with h2_client.lone_errors():
        async with anyio.create_task_group() as nursery:
            if streaming:
                nursery.start_soon(stream.send_notifications)
            outcome = await _read_answer(actor, stream.chunks(), url)
            nursery.cancel_scope.cancel()
    return outcome


class _OpenStream:
    """Both directions of a bidirectional attempt, and Restate's two timers over them."""

    def __init__(self, actor: AttemptActor, exchange: h2_client.Exchange, sent: int, streaming: bool) -> None:
        self.actor = actor
        self.exchange = exchange
        self.sent = sent  # journal entries the deployment has
        self.request_open = streaming
        limits = invocation_timeouts(actor.handler, actor.runtime.config)
        self.inactivity_s, self.abort_s = limits
        self.last_activity = anyio.current_time()
        self._reading: anyio.CancelScope | None = None  # the wait for the deployment while the request is open

    async def chunks(self) -> typing.AsyncIterator[bytes]:
        """The response body. While the request is open the deployment may be silent (the sender closes it
        after the inactivity timeout); after that it has the abort timeout to answer each time."""
        while True:
            if self.request_open:
                with anyio.CancelScope() as scope:
                    self._reading = scope
                    chunk = await self.exchange.next_chunk(timeout=math.inf)
                if scope.cancelled_caught:
                    continue  # the request was closed meanwhile: wait again, with the abort timeout
            else:
                chunk = await self.exchange.next_chunk(timeout=self.abort_s)
            if chunk is None:
                return
            self.last_activity = anyio.current_time()
            yield chunk

    async def send_notifications(self) -> None:
        actor = self.actor
        version = typing.cast(RemoteHandler, actor.handler).deployment.protocol_version
        while True:
            machine = actor.machine
            fresh = [entry for entry in machine.entries[self.sent : machine.durable_length] if not entry.is_command]
            self.sent = max(self.sent, machine.durable_length)
            if fresh:
                types = completion_types(machine.entries)
                data = b"".join(encode(*notification_to_message(typing.cast(e.Notification, n), types, version)) for n in fresh)
                await self.exchange.send(data)
                self.last_activity = anyio.current_time()
            with anyio.CancelScope(deadline=self.last_activity + self.inactivity_s):
                await actor.durable_growth()
                continue
            if anyio.current_time() < self.last_activity + self.inactivity_s:
                continue  # the deployment sent something meanwhile
            # Idle for the inactivity timeout: close the request; the deployment suspends, or fails the abort timeout.
            self.request_open = False
            if self._reading is not None:
                self._reading.cancel()
            await self.exchange.end()
            return


def invocation_timeouts(handler: typing.Any, config: typing.Any) -> tuple[float, float]:
    """(inactivity, abort) in seconds: the handler's manifest timeouts, else the server's (remote_*_timeout_s)."""
    inactivity, abort = handler.inactivity_timeout, handler.abort_timeout
    return (
        config.remote_inactivity_timeout_s if inactivity is None else inactivity.total_seconds(),
        config.remote_abort_timeout_s if abort is None else abort.total_seconds(),
    )


def invocation_limits(handler: typing.Any, config: typing.Any) -> http_client.Limits:
    """How long a request/response attempt's deployment may be silent: its inactivity plus abort timeouts."""
    inactivity, abort = invocation_timeouts(handler, config)
    return http_client.Limits(connect_timeout=10.0, read_timeout=max(inactivity + abort, 0.001))


def _apply_frame(actor: AttemptActor, frame: Frame, output: bytes | e.Failure | None) -> typing.Any:
    """Apply one frame of the answer: None to read on, an Output to keep, or how the attempt ends."""
    answer = attempt_codec.read_answer_frame(frame)
    if isinstance(answer, attempt_codec.Output):
        return answer
    if isinstance(answer, attempt_codec.RunProposal):
        actor.deliver(answer.completion)
        return None
    if isinstance(answer, attempt_codec.Suspension):
        return answer.awaited
    if isinstance(answer, attempt_codec.Error):
        return RemoteFailure(answer.message, answer.code, answer.retry_after_s, answer.entry_index, answer.entry_name)
    if isinstance(answer, attempt_codec.End):
        if output is None:
            raise ProtocolError("End without an Output command")
        return output
    _record_command(actor, answer)
    return None
