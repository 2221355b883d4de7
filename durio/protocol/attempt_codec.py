"""One attempt at a deployment from the Restate server's side, as bytes (sans-IO).

`request_body` is what starts the attempt: the StartMessage (the eager state, the random seed) and
the whole journal. `read_answer_frame` says what one frame of the deployment's answer means: a command
to persist, a `run` step's proposed result, the Output, a Suspension, an Error or End.
durio.actors.remote.attempt moves these bytes over HTTP and applies the answers to the invocation
actor; nothing here does I/O or knows the actor.
"""

from __future__ import annotations

import typing

from durio import ids
from durio.journal import entries as e
from durio.protocol import messages as m
from durio.protocol.convert import failure_of, journal_to_frames, message_to_command
from durio.protocol.framing import Frame, ProtocolError, encode

M = m.MESSAGES


def request_body(
    invocation_id: str,
    key: str | None,
    journal: list[e.Entry],
    state: typing.Mapping[str, bytes] | None,
    retry_count: int,
    version: int,
) -> bytes:
    """The request of an attempt. `state` None: lazy state (enableLazyState), the deployment gets none up front
    and asks for each key it reads (GetLazyState), as Restate does."""
    start = M["StartMessage"](
        id=ids.invocation_id_to_bytes(invocation_id),
        debug_id=invocation_id,
        known_entries=len(journal),
        key=key or "",
        partial_state=state is None,
        retry_count_since_last_stored_entry=retry_count,
        duration_since_last_stored_entry=0,
    )
    for name, value in sorted(state.items()) if state is not None else ():
        start.state_map.add(key=name.encode(), value=value)
    if version >= 6:
        start.random_seed = ids.random_seed(invocation_id)
    body = bytearray(encode(m.START, start))
    for type_id, message in journal_to_frames(journal, version):
        body += encode(type_id, message)
    return bytes(body)


class Output(typing.NamedTuple):
    """The handler's result (the Output command): the attempt ends with it at End."""

    result: bytes | e.Failure


class RunProposal(typing.NamedTuple):
    """A `run` step's result, proposed by the deployment: durable once the server stores it."""

    completion: e.Completion


class Suspension(typing.NamedTuple):
    """The deployment waits for these handles (completion ids, signals, named signals)."""

    awaited: list[int]


class Error(typing.NamedTuple):
    """The attempt failed (ErrorMessage): the server retries, after `retry_after_s` if the deployment says so."""

    message: str
    code: int
    retry_after_s: float | None
    entry_index: int | None
    entry_name: str | None


class End(typing.NamedTuple):
    """The attempt is over; it must have sent its Output first."""


AnswerFrame = e.Entry | Output | RunProposal | Suspension | Error | End


def read_answer_frame(frame: Frame) -> AnswerFrame:
    """What one frame of the deployment's answer means (a command other than Output comes back as its entry).
    Raises ProtocolError for a frame no deployment may send."""
    type_id, message = frame.type_id, frame.message
    if m.is_command(type_id):
        entry = message_to_command(type_id, message)
        return Output(entry.result) if isinstance(entry, e.Output) else entry
    if type_id == m.PROPOSE_RUN_COMPLETION:
        which = message.WhichOneof("result")
        if which is None:
            raise ProtocolError("a run completion proposal without a result")
        result: bytes | e.Failure = bytes(message.value) if which == "value" else failure_of(message.failure)
        return RunProposal(e.Completion(completion_id=message.result_completion_id, result=result))
    if type_id == m.SUSPENSION:
        awaited = [
            *message.waiting_completions,
            *(-s for s in message.waiting_signals),
            *(e.named_signal_handle(name) for name in message.waiting_named_signals),
        ]
        if not awaited:
            raise ProtocolError("a Suspension that waits for nothing")
        return Suspension(awaited)
    if type_id == m.ERROR:
        return Error(
            message.message or f"the handler failed with code {message.code}",
            message.code or 500,
            message.next_retry_delay / 1000 if message.HasField("next_retry_delay") else None,
            message.related_command_index if message.HasField("related_command_index") else None,
            message.related_command_name if message.HasField("related_command_name") else None,
        )
    if type_id == m.END:
        return End()
    raise ProtocolError(f"unexpected message type 0x{type_id:04x} from the endpoint")
