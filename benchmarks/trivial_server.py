"""The client's ceiling: a server that does nothing but answer 200, on raw asyncio protocols.

    python benchmarks/trivial_server.py 127.0.0.1:18090

Whatever rate the load generator reaches against this is the most it can
measure on this machine; a durio figure near it says more about the client
than about durio. It parses only what it must to stay in step with a
keep-alive client: the end of each request head, and its Content-Length body.
"""

from __future__ import annotations

import asyncio
import signal
import sys

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"


class _AnswerEverything(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        answers = 0
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = bytes(buffer[:end]).lower()
            position = head.find(b"\r\ncontent-length:")
            length = 0
            if position >= 0:
                line_end = head.find(b"\r\n", position + 2)
                length = int(head[position + 17 : line_end if line_end >= 0 else None])
            if len(buffer) < end + 4 + length:
                break  # the body is still on its way
            del buffer[: end + 4 + length]
            answers += 1
        if answers:
            self.transport.write(RESPONSE * answers)  # type: ignore[union-attr]


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_AnswerEverything, host, port, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"trivial server listening on http://{host}:{port}", file=sys.stderr, flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    host, _, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:18090").rpartition(":")
    asyncio.run(serve(host or "127.0.0.1", int(port)))


if __name__ == "__main__":
    main()
