"""Unit tests: one module at a time, against real LMDB files in a tmp dir, with no server and no HTTP."""

from __future__ import annotations

import pathlib
import typing

import pytest

from durio.storage.lmdb_store import LmdbStore


@pytest.fixture
def lmdb_store(tmp_path: pathlib.Path) -> typing.Iterator[LmdbStore]:
    """A fresh LMDB environment; no fsync, which unit tests do not test."""
    store = LmdbStore(tmp_path / "lmdb", sync=False)
    yield store
    store.close()
