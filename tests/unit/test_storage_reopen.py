"""LMDB gives up on an environment whose commit failed mid-write: the store opens it again (real LMDB files).

The disk-full soak saw it: after a commit failed while the disk filled, one worker's every later write
failed with EIO for minutes, the disk long since freed. The failure is injected here at the commit (a real
full disk cannot be timed to a meta-page write); the reopening, and what the files hold after it, are real.
"""

from __future__ import annotations

import pathlib

import lmdb
import pytest

from durio.storage import StorageError
from durio.storage.lmdb_store import LmdbStore
from durio.storage.txn import Txn


def put(name: str, value: bytes):  # type: ignore[no-untyped-def]
    return lambda txn: txn.set_state("Cart", "alice", name, value)


@pytest.mark.parametrize(
    "failure",
    [
        lmdb.PanicError("MDB_PANIC: Update of meta page failed or environment had fatal error"),
        lmdb.Error("mdb_txn_commit: Input/output error"),
    ],
)
def test_an_environment_lmdb_gave_up_on_is_opened_again_and_takes_writes(tmp_path: pathlib.Path, failure: Exception) -> None:
    store = LmdbStore(tmp_path / "data")
    try:
        store.commit_batch([put("before", b"kept")])
        environment = store._env
        real_commit = store._commit_once
        calls = 0

        def commit_failing_once(ops, before_commit):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            if calls == 1:
                raise failure
            return real_commit(ops, before_commit)

        store._commit_once = commit_failing_once  # type: ignore[method-assign]
        with pytest.raises(StorageError, match="opened again"):
            store.commit_batch([put("refused", b"lost")])
        assert store._env is not environment, "the environment was opened again"
        store.commit_batch([put("after", b"taken")])

        def state(txn: Txn) -> dict[str, bytes]:
            return txn.state_of("Cart", "alice")

        assert store.read(state) == {"before": b"kept", "after": b"taken"}
    finally:
        store.close()
