"""The server's side of one attempt as bytes (durio.protocol.attempt_codec), without a deployment or a socket."""

from __future__ import annotations

import pytest

from durio import ids
from durio.journal import entries as e
from durio.protocol import attempt_codec as codec
from durio.protocol import messages as m
from durio.protocol.convert import command_to_message
from durio.protocol.framing import Frame, FrameDecoder, ProtocolError

M = m.MESSAGES
INVOCATION = ids.new_invocation_id("cart-1")
JOURNAL: list[e.Entry] = [e.Input(value=b'"hi"'), e.Run(name="step", completion_id=1)]


def frames_of(body: bytes) -> list[Frame]:
    decoder = FrameDecoder()
    frames = decoder.feed(body)
    assert decoder.pending_bytes == 0
    return frames


def test_the_request_starts_with_the_eager_state_sorted_then_the_whole_journal() -> None:
    body = codec.request_body(INVOCATION, "cart-1", JOURNAL, {"b": b"2", "a": b"1"}, retry_count=3, version=5)
    start, *journal = frames_of(body)
    assert start.type_id == m.START
    message = start.message
    assert (message.debug_id, bytes(message.id)) == (INVOCATION, ids.invocation_id_to_bytes(INVOCATION))
    assert (message.key, message.known_entries, message.partial_state) == ("cart-1", 2, False)
    assert [(bytes(s.key), bytes(s.value)) for s in message.state_map] == [(b"a", b"1"), (b"b", b"2")]
    assert message.retry_count_since_last_stored_entry == 3
    assert message.random_seed == 0  # V5 has no seed field to fill
    assert [frame.type_id for frame in journal] == [
        m.COMMAND_TYPE_IDS["InputCommandMessage"],
        m.COMMAND_TYPE_IDS["RunCommandMessage"],
    ]


def test_lazy_state_sends_none_up_front_and_v6_carries_the_invocations_random_seed() -> None:
    start = frames_of(codec.request_body(INVOCATION, None, JOURNAL, None, retry_count=0, version=6))[0].message
    assert (start.partial_state, len(start.state_map), start.key) == (True, 0, "")
    assert start.random_seed == ids.random_seed(INVOCATION) != 0


def frame(type_id: int, **fields: object) -> Frame:
    return Frame(type_id, 0, M[m.CONTROL_TYPES[type_id]](**fields))


def test_each_answer_frame_says_what_it_means() -> None:
    output = Frame(*_command(e.Output(result=b"42")))
    assert codec.read_answer_frame(output) == codec.Output(b"42")
    sleep = codec.read_answer_frame(Frame(*_command(e.Sleep(wake_up_ms=5, completion_id=2))))
    assert isinstance(sleep, e.Sleep) and sleep.completion_id == 2
    proposal = codec.read_answer_frame(frame(m.PROPOSE_RUN_COMPLETION, result_completion_id=1, value=b"7"))
    assert proposal == codec.RunProposal(e.Completion(completion_id=1, result=b"7"))
    suspension = codec.read_answer_frame(
        frame(m.SUSPENSION, waiting_completions=[1, 2], waiting_signals=[17], waiting_named_signals=["go"])
    )
    assert suspension == codec.Suspension([1, 2, -17, e.named_signal_handle("go")])
    error = codec.read_answer_frame(frame(m.ERROR, code=503, message="down", next_retry_delay=1500, related_command_index=4))
    assert error == codec.Error("down", 503, 1.5, 4, None)
    assert codec.read_answer_frame(frame(m.ERROR)) == codec.Error("the handler failed with code 0", 500, None, None, None)
    assert codec.read_answer_frame(frame(m.END)) == codec.End()


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (frame(m.SUSPENSION), "waits for nothing"),
        (frame(m.PROPOSE_RUN_COMPLETION, result_completion_id=1), "without a result"),
        (frame(m.START), "unexpected message type 0x0000"),
    ],
)
def test_a_frame_no_deployment_may_send_is_a_protocol_violation(bad: Frame, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        codec.read_answer_frame(bad)


def _command(entry: e.Entry) -> tuple[int, int, object]:
    type_id, message = command_to_message(entry, 5)
    return type_id, 0, message
