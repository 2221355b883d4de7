"""What shipping a group commit to PostgreSQL costs: LmdbStore.commit_batch alone, then with durio.cluster's
durability (one fenced transaction per batch, pipelined), same machine, same run.

Starts a throwaway PostgreSQL (tests/postgres.py: Debian's package, fsync on) in a tmp dir.
Each op writes what a journal step writes: an entry (~200 bytes) and an invocation record (~300 bytes),
plus the batch's sequence meta row, all in distinct partitions' keys.

    .venv/bin/python benchmarks/cluster_commit.py [--batches 300] [--sizes 1,16,64]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from durio.cluster.node import ClusterOptions, _open_cluster, ready_local_store  # noqa: E402
from durio.cluster.schema import GLOBAL_PARTITION  # noqa: E402
from durio.storage import schema as s  # noqa: E402
from durio.storage.lmdb_store import LmdbStore  # noqa: E402
from tests.postgres import Postgres, postgres_bin_dir  # noqa: E402


def step_op(n: int):  # type: ignore[no-untyped-def]
    key = os.urandom(8) + n.to_bytes(16, "big")

    def op(txn):  # type: ignore[no-untyped-def]
        txn._put(s.JOURNAL, key + b"\0\0\0\1", os.urandom(200))
        txn._put(s.INVOCATIONS, key, os.urandom(300))
        return None

    return op


def measure(store: LmdbStore, batches: int, size: int) -> list[float]:
    timings = []
    counter = 0
    for _ in range(batches):
        ops = [step_op(counter + i) for i in range(size)]
        counter += size
        started = time.perf_counter()
        store.commit_batch(ops, lambda txn: txn.put_meta("sequence", counter))
        timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--sizes", default="1,16,64")
    args = parser.parse_args()
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        sys.exit("PostgreSQL is not installed (apt-get install postgresql)")
    root = pathlib.Path(tempfile.mkdtemp(prefix="durio-bench-pg-"))
    work = pathlib.Path(tempfile.mkdtemp(prefix="durio-bench-lmdb-"))
    postgres = Postgres(root, bin_dir)
    postgres.init()
    postgres.start()
    try:
        node = _open_cluster(ClusterOptions(postgres.dsn, "bench", 60.0, 24))
        node.acquire({GLOBAL_PARTITION, *range(node.partitions)})
        ready_local_store(node, str(work / "cluster"))
        plain = LmdbStore(work / "plain")
        clustered = LmdbStore(work / "cluster")
        clustered.durability = node
        print(
            f"{'ops/batch':>9} {'LMDB ms/batch':>14} {'+PostgreSQL ms/batch':>21} {'added ms':>9} {'p99 ms':>7} {'ops/s LMDB':>11} {'ops/s PG':>9}"
        )
        for size in (int(x) for x in args.sizes.split(",")):
            lmdb_only = measure(plain, args.batches, size)
            shipped = measure(clustered, args.batches, size)
            a, b = statistics.median(lmdb_only) * 1000, statistics.median(shipped) * 1000
            p99 = sorted(shipped)[int(len(shipped) * 0.99) - 1] * 1000
            print(f"{size:>9} {a:>14.2f} {b:>21.2f} {b - a:>9.2f} {p99:>7.2f} {size / a * 1000:>11.0f} {size / b * 1000:>9.0f}")
        plain.close()
        clustered.close()
        node.close()
    finally:
        postgres.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
