"""Prometheus metrics at /metrics on the admin port (text exposition format 0.0.4)."""

from __future__ import annotations

import typing

from durio.actors.runtime import Runtime
from durio.storage.records import Status


class MetricsRenderer:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def _counts_by_status(self, workers: list[dict[str, typing.Any]]) -> dict[str, int]:
        """Stored counts (O(1) from the status index), with what live actors are doing right now."""
        stored = await self.runtime.store.read(lambda txn: txn.count_by_status())
        running = sum(w.get("running", 0) for w in workers)
        backing_off = sum(w.get("backing_off", 0) for w in workers)
        counts = {str(s): stored.get(str(s), 0) for s in Status}
        # Live actors run invocations stored as ready or backing off; what is left of those is waiting to run.
        counts["ready"] = max(0, stored["ready"] + stored["backing-off"] - running - backing_off)
        counts["running"] = running
        counts["backing-off"] = backing_off
        return counts

    async def render(self) -> bytes:
        """The whole server's figures: each worker process's counters, summed (by worker where it helps)."""
        runtime = self.runtime
        workers = await runtime.worker_snapshots()
        lines: list[str] = []

        def total(name: str) -> int:
            return sum(w.get(name, 0) for w in workers)

        def per_worker(name: str) -> list[tuple[str, float]]:
            return [(f'{{worker="{w["worker"]}"}}', w.get(name, 0)) for w in workers]

        def metric(name: str, kind: str, help_text: str, samples: typing.Iterable[tuple[str, float]]) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                lines.append(f"{name}{labels} {value:g}" if isinstance(value, float) else f"{name}{labels} {value}")

        counts = await self._counts_by_status(workers)
        metric(
            "durio_invocations",
            "gauge",
            "Invocations by status.",
            [(f'{{status="{status}"}}', count) for status, count in counts.items()],
        )
        metric("durio_invocations_created_total", "counter", "Invocations created since start.", [("", total("created"))])
        metric(
            "durio_invocations_completed_total",
            "counter",
            "Invocations completed since start, by outcome.",
            [('{outcome="success"}', total("completed_success")), ('{outcome="failure"}', total("completed_failure"))],
        )
        metric(
            "durio_journal_appends_total", "counter", "Journal entries appended since start.", [("", total("journal_appends"))]
        )
        metric(
            "durio_attempt_failures_total",
            "counter",
            "Failed attempts (each one a retry or a pause) since start.",
            [("", total("attempt_failures"))],
        )
        metric("durio_active_actors", "gauge", "Invocation actors alive in memory.", [("", total("actors"))])
        metric("durio_timers_in_memory", "gauge", "Durable timers held in the timer actor's window.", [("", total("timers"))])
        metric(
            "durio_workers",
            "gauge",
            "Worker processes serving this server's partitions (restarting ones included).",
            [("", len(workers))],
        )
        metric(
            "durio_worker_invocations_created_total",
            "counter",
            "Invocations created since start, by worker process.",
            per_worker("created"),
        )
        metric(
            "durio_storage_size_bytes", "gauge", "Bytes used in the LMDB data file.", [("", runtime.store.backend.size_bytes())]
        )
        metric(
            "durio_storage_map_size_bytes",
            "gauge",
            "The LMDB map size (it grows by itself).",
            [("", runtime.store.backend.map_size)],
        )
        metric(
            "durio_writer_batches_total",
            "counter",
            "Group commits (one transaction and one fsync each).",
            [("", total("writer_batches"))],
        )
        metric("durio_writer_ops_total", "counter", "Writes committed by the group-commit writer.", [("", total("writer_ops"))])
        metric("durio_writer_queued", "gauge", "Writes waiting for the next group commit.", [("", total("writer_queued"))])
        cluster = getattr(runtime.config.durability, "statistics", None)  # a durio.cluster DurabilityStatistics
        if cluster is not None:
            metric(
                "durio_cluster_batches_total", "counter", "Batches PostgreSQL committed for this node.", [("", cluster.batches)]
            )
            metric("durio_cluster_rows_total", "counter", "Rows those batches wrote or deleted.", [("", cluster.rows)])
            metric(
                "durio_cluster_refused_batches_total",
                "counter",
                "Batches not committed: fenced (another node owns a partition), unreachable (PostgreSQL), "
                "lease (the leases could have expired).",
                [
                    ('{reason="fenced"}', cluster.fenced),
                    ('{reason="unreachable"}', cluster.unreachable),
                    ('{reason="lease"}', cluster.self_fenced),
                ],
            )
            metric(
                "durio_cluster_caught_up_batches_total",
                "counter",
                "Batches whose commit answer was lost that PostgreSQL turned out to hold.",
                [("", cluster.caught_up)],
            )
        return ("\n".join(lines) + "\n").encode()
