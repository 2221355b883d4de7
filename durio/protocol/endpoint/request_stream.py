"""An invocation request read as a stream of frames: the journal to replay, then what arrives meanwhile.

In request/response mode (HTTP/1.1) the server sends the StartMessage and the
journal and ends the request body; the attempt runs on what it got and suspends
when it needs more. In bidirectional mode (HTTP/2) the request stays open for
the whole attempt: after the journal, the server sends the notifications that
arrive (a call's result, a timer, a step's confirmed result) as they happen,
and closes its side when it wants the attempt to suspend (its inactivity
timeout). Both modes read the same way: the replay is what the StartMessage
announces, and everything after it is a live notification.
"""

from __future__ import annotations

import typing

from durio.asgi import BodyTooLarge, HttpError, Receive, Scope, header
from durio.journal import entries as e
from durio.protocol import messages as m
from durio.protocol.convert import message_to_command, message_to_notification
from durio.protocol.framing import Frame, FrameDecoder, ProtocolError

# Messages a server may send on an open stream that need no action from the SDK.
_ACKNOWLEDGEMENTS = (m.COMMAND_ACK,)


class RequestStream:
    def __init__(self, scope: Scope, receive: Receive, replay_limit: int) -> None:
        self._receive = receive
        self._decoder = FrameDecoder()
        self._frames: list[Frame] = []
        self._replay_limit = replay_limit
        self._received = 0
        self.ended = False  # the server closed its side of the request
        length = header(scope, b"content-length")
        if length is not None:
            try:
                if int(length) > replay_limit:
                    raise BodyTooLarge(replay_limit)
            except ValueError:
                raise HttpError(400, f"bad content-length header: {length.decode('latin-1')!r}") from None

    async def _read_more(self) -> bool:
        """Read the next chunk into the frame buffer; False once the request body has ended."""
        if self.ended:
            return False
        message = await self._receive()
        if message["type"] == "http.disconnect":
            raise HttpError(499, "the client closed the connection")
        chunk = message.get("body", b"")
        if chunk:
            self._received += len(chunk)
            self._frames.extend(self._decoder.feed(chunk))
        if not message.get("more_body", False):
            self.ended = True
        return True

    async def replay(self) -> tuple[typing.Any, list[e.Entry]]:
        """The StartMessage and the journal it announces, read as far as they go and no further."""
        while not self._replay_complete():
            if not await self._read_more():
                break
            if self._received > self._replay_limit:
                raise BodyTooLarge(self._replay_limit)
        if self.ended and self._decoder.pending_bytes:
            raise ProtocolError(f"the request ends inside a frame ({self._decoder.pending_bytes} bytes left over)")
        return _parse_replay(self._frames)

    def _replay_complete(self) -> bool:
        if not self._frames:
            return False
        first = self._frames[0]
        # Not a StartMessage: there is nothing to wait for (parsing says what is wrong).
        return first.type_id != m.START or len(self._frames) > first.message.known_entries

    async def notifications(self) -> typing.AsyncIterator[e.Notification]:
        """What the server sends after the replay, until it closes its side of the request."""
        start = self._frames[0].message
        backlog, self._frames = self._frames[1 + start.known_entries :], []
        while True:
            for frame in backlog:
                if m.is_notification(frame.type_id):
                    yield message_to_notification(frame.type_id, frame.message)
                elif frame.type_id not in _ACKNOWLEDGEMENTS:
                    raise ProtocolError(f"unexpected message type 0x{frame.type_id:04x} after the journal")
            if not await self._read_more():
                if self._decoder.pending_bytes:
                    raise ProtocolError(f"the request ends inside a frame ({self._decoder.pending_bytes} bytes left over)")
                return
            backlog, self._frames = self._frames, []


def _parse_replay(frames: list[Frame]) -> tuple[typing.Any, list[e.Entry]]:
    if not frames or frames[0].type_id != m.START:
        raise ProtocolError("the request does not start with a StartMessage")
    start = frames[0].message
    replay = frames[1:]
    if len(replay) < start.known_entries:
        raise ProtocolError(f"the StartMessage announces {start.known_entries} entries, the request carries {len(replay)}")
    journal: list[e.Entry] = []
    for frame in replay[: start.known_entries]:
        if m.is_command(frame.type_id):
            journal.append(message_to_command(frame.type_id, frame.message))
        elif m.is_notification(frame.type_id):
            journal.append(message_to_notification(frame.type_id, frame.message))
        else:
            raise ProtocolError(f"unexpected message type 0x{frame.type_id:04x} in the journal")
    if not journal or not isinstance(journal[0], e.Input):
        raise ProtocolError("the journal does not start with an Input command")
    return start, journal
