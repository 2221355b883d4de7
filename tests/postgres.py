"""A throwaway PostgreSQL for the cluster tests: Debian's `postgresql` package, a fresh cluster in a tmp dir.

initdb refuses to run as root, so when the tests run as root the server runs as the `postgres` OS user
the package creates (the data directory is handed to it); otherwise as the current user. It listens on a
free loopback port only, its socket in its own directory, with fsync on (the tests rely on durability).
`stop()` and `start()` may be called again in a test, to take the database away under load.
"""

from __future__ import annotations

import copy
import glob
import os
import pathlib
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import typing

import pytest


def postgres_bin_dir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(path.split("/")[4]))
    return os.path.dirname(found[-1]) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Postgres:
    """One PostgreSQL server in `root`, owned by an unprivileged user."""

    def __init__(self, root: pathlib.Path, bin_dir: str) -> None:
        self.root = root
        self.bin_dir = bin_dir
        self.data = root / "data"
        self.socket_dir = root / "socket"
        self.log = root / "postgres.log"
        self.port = _free_port()
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.dsn = f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def on_database(self, name: str) -> "Postgres":
        """The same server, with `dsn` and `sql` on database `name`."""
        view = copy.copy(self)
        view.dsn = f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"
        return view

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        result = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}\n{log}")

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(
            f"{self.bin_dir}/initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-instructions"
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.socket_dir} "
            "-c fsync=on -c max_connections=40 -c shared_buffers=32MB"
        )
        self._run(f"{self.bin_dir}/pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(f"{self.bin_dir}/pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def sql(self, statement: str, *params: typing.Any) -> list[tuple[typing.Any, ...]]:
        """Run one statement on a fresh connection (the test's view of the truth) and return its rows."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as connection:
            cursor = connection.execute(statement, params or None)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="session")
def postgres_server() -> typing.Iterator[Postgres]:
    """One server for the session (initdb costs seconds); each test gets its own database in it."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.fail("PostgreSQL is not installed: `make test` installs Debian's postgresql package")
    # Not under pytest's tmp dirs: the postgres user could not enter them (pytest keeps its root at mode 0700).
    root = pathlib.Path(tempfile.mkdtemp(prefix="durio-postgres-"))
    server = Postgres(root, bin_dir)
    server.init()
    server.start()
    try:
        yield server
    finally:
        if server.running():
            try:
                server.stop("immediate")
            except RuntimeError:
                pass
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres(postgres_server: Postgres, request: pytest.FixtureRequest) -> typing.Iterator[Postgres]:
    """A fresh, empty database on the session's server (started again if a test left it stopped)."""
    if not postgres_server.running():
        postgres_server.start()
    name = "test_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[-50:]
    postgres_server.sql(f'DROP DATABASE IF EXISTS "{name}"')
    postgres_server.sql(f'CREATE DATABASE "{name}"')
    yield postgres_server.on_database(name)
    if not postgres_server.running():
        postgres_server.start()


class CuttingProxy:
    """A TCP relay to PostgreSQL that can cut a connection at the worst moments, for unknown-outcome tests.

    `cut_before_request()`: the next bytes a client sends are dropped and the connection closed (the server
    never sees them). `cut_before_answer()`: the client's next bytes reach the server, and the connection is
    closed when the server answers, so the client never learns what happened (a COMMIT that may have landed).
    """

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._cut: str | None = None
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def dsn(self, postgres: Postgres) -> str:
        return postgres.dsn.replace(f":{postgres.port}/", f":{self.port}/")

    def cut_before_request(self) -> None:
        self._cut = "request"

    def cut_before_answer(self) -> None:
        self._cut = "answer"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            thread = threading.Thread(target=self._relay, args=(client, server), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        import select

        try:
            while True:
                ready, _, _ = select.select([client, server], [], [], 0.2)
                if self._closed:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    with self._lock:
                        if sock is client and self._cut == "request":
                            self._cut = None
                            return
                        if sock is server and self._cut == "answer" and b"COMMIT\x00" in data:
                            self._cut = None
                            return
                    (server if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def close(self) -> None:
        self._closed = True
        self.listener.close()
