"""The local channel between worker processes: each worker listens on a Unix socket, and talks to the others.

Two kinds of frames travel on it. A request runs one of the runtime's verbs
(call, send, attach, control, complete_awakeable, ...) in the worker that owns
the partition it is about and carries the answer back; a `tell` hands a
worker something to do (deliver an outbox message, arm a timer, apply
messages, reload the deployments) in the order it was sent, without an answer.

Frames are pickled: both ends are this program, and the sockets live in a
directory only this user can enter, so nothing else can speak on them.

A worker that is down (killed, restarting) is waited for: tells stay queued and
requests are sent once it listens again. A request already sent to a worker
that dies fails with PeerLost, and the runtime decides whether to send it again.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import os
import pickle
import struct
import tempfile
import typing

import anyio
import anyio.abc

from durio.actors.runtime import PeerLost, PeerUnavailable, RemoteError
from durio.partitions import owner_of

log = logging.getLogger("durio.workers")

_LENGTH = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024
RECONNECT_DELAYS = (0.02, 0.05, 0.1, 0.2, 0.5)
# How long a request waits for the worker that owns its partition to come back before the client gets a 503.
UNAVAILABLE_AFTER_S = 30.0


class NotOwner(Exception):
    """The peer a request was sent to does not own the request's partition (any more): ask its owner."""


def socket_directory(data_dir: str) -> str:
    """Where a data directory's workers listen: short (Unix socket paths are limited), and private to this user."""
    digest = hashlib.blake2b(os.path.realpath(data_dir).encode(), digest_size=6).hexdigest()
    directory = os.path.join(tempfile.gettempdir(), f"durio-{os.getuid()}", digest)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(os.path.dirname(directory), 0o700)
    os.chmod(directory, 0o700)
    return directory


def socket_path(directory: str, worker: int) -> str:
    return os.path.join(directory, f"w{worker}.sock")


def _portable(exc: Exception) -> Exception:
    """The exception itself when it survives pickling (a StorageError stays one for the HTTP layer), else a RemoteError."""
    try:
        pickle.loads(pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL))
        return exc.with_traceback(None)
    except Exception:
        log.error("a sibling's request failed: %r", exc)
        return RemoteError(f"{type(exc).__name__}: {exc}")


def _frame_bytes(frame: typing.Any) -> bytes:
    payload = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(payload)) + payload


async def _send_frame(stream: anyio.abc.ByteStream, frame: typing.Any) -> None:
    await stream.send(_frame_bytes(frame))


class _FrameReader:
    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def read(self) -> typing.Any:
        """The next frame; EOFError when the peer closed."""
        return pickle.loads(await self.read_raw())

    async def read_raw(self) -> bytes:
        """The next frame's bytes, not unpickled; EOFError when the peer closed."""
        while True:
            if len(self._buffer) >= _LENGTH.size:
                (size,) = _LENGTH.unpack_from(self._buffer)
                if size > MAX_FRAME:
                    raise EOFError(f"a frame of {size} bytes")
                if len(self._buffer) >= _LENGTH.size + size:
                    payload = bytes(self._buffer[_LENGTH.size : _LENGTH.size + size])
                    del self._buffer[: _LENGTH.size + size]
                    return payload
            try:
                self._buffer += await self._stream.receive(1024 * 1024)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                raise EOFError(str(exc)) from None


# Runs a verb for a sibling: requests get an answer (awaitable), tells do not (plain call).
RequestHandler = typing.Callable[..., typing.Awaitable[typing.Any]]
TellHandler = typing.Callable[..., None]


class _Link:
    """This process's connection to one peer: queued tells, requests waiting for answers."""

    def __init__(self) -> None:
        self.tells: list[tuple[str, tuple[typing.Any, ...]]] = []
        self.outgoing = anyio.Event()
        self.pending: dict[int, tuple[anyio.Event, list[typing.Any]]] = {}
        self.unsent: list[tuple[int, str, tuple[typing.Any, ...]]] = []
        self.connected = anyio.Event()
        self.up = False

    def wake(self) -> None:
        self.outgoing.set()


# Where a peer listens: a Unix socket's path (workers of one machine) or (host, port) (nodes of a cluster).
Address = typing.Union[str, tuple[str, int]]


class Peers:
    """The PeerLink of durio.actors.runtime over sockets; subclasses say who the peers are and where.

    Every connection starts with a hello: the peers' shared secret, length-prefixed and compared before
    any frame is unpickled, so only a process that knows it can speak (workers: an empty secret, their
    sockets live in a directory only this user can enter; nodes: the cluster's id, from PostgreSQL)."""

    def __init__(self, me: typing.Any, secret: bytes = b"") -> None:
        self.me = me
        self.secret = secret
        self._ids = itertools.count(1)
        self._links: dict[typing.Any, _Link] = {}
        self._tasks: anyio.abc.TaskGroup | None = None
        self.requests: dict[str, RequestHandler] = {}
        self.tells: dict[str, TellHandler] = {}
        # Set once the handlers can run (the runtime has recovered); peers' frames wait until then.
        self.ready = anyio.Event()
        # Where requests run, when they must stop with the runtime that answers them (a cluster node's runtime
        # gives way to the next one); None: in the connection's own task group.
        self.answering: anyio.abc.TaskGroup | None = None

    # ------------------------------------------------------------ who and where (subclasses)

    def members(self) -> list[typing.Any]:
        raise NotImplementedError

    def owner_of(self, partition: int) -> typing.Any:
        raise NotImplementedError

    def address_of(self, member: typing.Any) -> Address | None:
        """Where `member` listens now (None: not known yet)."""
        raise NotImplementedError

    async def listen(self) -> anyio.abc.Listener[anyio.abc.ByteStream]:
        raise NotImplementedError

    # ------------------------------------------------------------ sending

    def _link(self, member: typing.Any) -> _Link:
        link = self._links.get(member)
        if link is None:
            link = self._links[member] = _Link()
            if self._tasks is not None:
                self._tasks.start_soon(self._keep_link, member, link)
        return link

    def tell(self, worker: typing.Any, verb: str, *args: typing.Any) -> None:
        if worker == self.me:
            self.tells[verb](*args)
            return
        link = self._link(worker)
        link.tells.append((verb, args))
        link.wake()

    def tell_all(self, verb: str, *args: typing.Any) -> None:
        for worker in self.members():
            if worker != self.me:
                self.tell(worker, verb, *args)

    async def forward_to_owner(self, partition: int, verb: str, *args: typing.Any) -> typing.Any:
        return await self.forward(self.owner_of(partition), verb, *args)

    async def forward(self, worker: typing.Any, verb: str, *args: typing.Any) -> typing.Any:
        if worker == self.me:
            return await self.requests[verb](*args)
        link = self._link(worker)
        if not link.up:
            with anyio.move_on_after(UNAVAILABLE_AFTER_S):
                await link.connected.wait()
            if not link.up:
                raise PeerUnavailable(f"{self.describe(worker)} is not running (it is being restarted); retry later")
        request_id = next(self._ids)
        done = anyio.Event()
        answer: list[typing.Any] = []
        link.pending[request_id] = (done, answer)
        link.unsent.append((request_id, verb, args))
        link.wake()
        try:
            await done.wait()
        finally:
            link.pending.pop(request_id, None)
        kind, value = answer
        if kind == "ok":
            return value
        if kind == "lost":
            raise PeerLost(f"{self.describe(worker)} stopped while it ran {verb}")
        raise value

    def describe(self, member: typing.Any) -> str:
        return f"worker {member}"

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen for peers and keep a connection to each."""
        listener = await self.listen()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(listener.serve, self._serve_peer)
            for member in self.members():
                if member != self.me:
                    self._link(member)
            # One task keeps each link: those made so far start here, later ones as they are made (_link).
            for member, link in list(self._links.items()):
                tasks.start_soon(self._keep_link, member, link)
            self._tasks = tasks
            task_status.started()

    async def _connect(self, member: typing.Any) -> anyio.abc.ByteStream:
        address = self.address_of(member)
        if address is None:
            raise OSError(f"where {self.describe(member)} listens is not known yet")
        if isinstance(address, str):
            stream: anyio.abc.ByteStream = await anyio.connect_unix(address)
        else:
            stream = await anyio.connect_tcp(*address)
        try:
            await stream.send(_LENGTH.pack(len(self.secret)) + self.secret)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            # The peer closed as it was reached (dying, or restarting): like a refused connection, tried again.
            await stream.aclose()
            raise OSError(f"{self.describe(member)} closed the connection at once") from exc
        return stream

    async def _keep_link(self, worker: typing.Any, link: _Link) -> None:
        attempt = 0
        while True:
            try:
                stream = await self._connect(worker)
            except OSError:
                await anyio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
                attempt += 1
                continue
            attempt = 0
            link.up = True
            link.connected.set()
            try:
                async with stream, anyio.create_task_group() as tasks:
                    tasks.start_soon(self._read_answers, stream, link, tasks.cancel_scope)
                    await self._write_frames(stream, link)
            except* (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                # The sibling died while frames were being written to it (the task group wraps the error in an
                # ExceptionGroup: a plain `except` let it through and this worker died with its sibling).
                pass
            link.up = False
            link.connected = anyio.Event()
            # What was sent and not answered may or may not have been done: its caller decides.
            for request_id, (done, answer) in list(link.pending.items()):
                if not done.is_set() and request_id not in {item[0] for item in link.unsent}:
                    answer[:] = ["lost", None]
                    done.set()
            log.warning("lost the connection to %s; reconnecting", self.describe(worker))

    async def _write_frames(self, stream: anyio.abc.ByteStream, link: _Link) -> None:
        while True:
            if not link.tells and not link.unsent:
                link.outgoing = anyio.Event()
                await link.outgoing.wait()
            tells, link.tells = link.tells, []
            unsent, link.unsent = link.unsent, []
            try:
                # Everything ready goes out in one send: under load many frames wait at once.
                await stream.send(
                    b"".join(
                        [_frame_bytes(("tell", 0, verb, args)) for verb, args in tells]
                        + [_frame_bytes(("request", request_id, verb, args)) for request_id, verb, args in unsent]
                    )
                )
            except BaseException:
                # Not sent: kept for the next connection, in order.
                link.tells[:0] = tells
                link.unsent[:0] = unsent
                raise

    async def _read_answers(self, stream: anyio.abc.ByteStream, link: _Link, scope: anyio.CancelScope) -> None:
        reader = _FrameReader(stream)
        try:
            while True:
                _, request_id, kind, value = await reader.read()
                waiting = link.pending.get(request_id)
                if waiting is not None:
                    waiting[1][:] = [kind, value]
                    waiting[0].set()
        except EOFError:
            scope.cancel()

    # ------------------------------------------------------------ serving siblings

    async def _serve_peer(self, stream: anyio.abc.ByteStream) -> None:
        reader = _FrameReader(stream)
        try:
            hello = await reader.read_raw()
        except EOFError:
            hello = None
        if hello is None or not hmac.compare_digest(hello, self.secret):
            log.warning("refused a peer connection that did not know this server's secret")
            await stream.aclose()
            return
        await self.ready.wait()
        lock = anyio.Lock()

        async def send(frame: tuple[typing.Any, ...]) -> None:
            async with lock:
                try:
                    await _send_frame(stream, frame)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    pass

        async def answer(request_id: int, verb: str, args: tuple[typing.Any, ...]) -> None:
            try:
                await self.ready.wait()
                frame = ("answer", request_id, "ok", await self.requests[verb](*args))
            except anyio.get_cancelled_exc_class():
                # The runtime that ran it stopped (a cluster node's partitions moved): the asker tries again.
                with anyio.CancelScope(shield=True):
                    await send(("answer", request_id, "lost", None))
                raise
            except Exception as exc:  # the caller's request fails as it would have here, not this worker
                frame = ("answer", request_id, "error", _portable(exc))
            await send(frame)

        async with stream, anyio.create_task_group() as tasks:
            while True:
                try:
                    kind, request_id, verb, args = await reader.read()
                except EOFError:
                    tasks.cancel_scope.cancel()
                    return
                if kind == "tell":
                    try:
                        self.tells[verb](*args)
                    except Exception:
                        log.exception("a sibling's %s failed", verb)
                else:
                    (self.answering or tasks).start_soon(answer, request_id, verb, args)


class WorkerPeers(Peers):
    """The sibling workers of one server, on Unix sockets in a private directory; worker i owns p % N == i."""

    def __init__(self, directory: str, me: int, workers: int) -> None:
        super().__init__(me)
        self.directory = directory
        self.workers = workers

    def members(self) -> list[typing.Any]:
        return list(range(self.workers))

    def owner_of(self, partition: int) -> int:
        return owner_of(partition, self.workers)

    def address_of(self, member: typing.Any) -> Address | None:
        return socket_path(self.directory, member)

    async def listen(self) -> anyio.abc.Listener[anyio.abc.ByteStream]:
        path = socket_path(self.directory, self.me)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return await anyio.create_unix_listener(path)
