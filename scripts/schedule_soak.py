#!/usr/bin/env python3
"""kill -9 soak of schedules: a schedule every 2 s on a real `durio serve`, killed at random moments.

    .venv/bin/python scripts/schedule_soak.py [--duration 120] [--seed N] [--data-dir DIR]

The app is tests/apps/schedule_soak_app.py: `@scheduled(every="2s", overlap="allow_all",
catchup_window="1m")`, so every tick inside the window must fire, also those that came due while
durio was down. For `--duration` seconds the server is killed with SIGKILL after a random 0.3-4 s
up, left dead a random 0-2.5 s, and started again on the same files and ports. Then it runs a few
seconds more, stops on SIGTERM, and the LMDB files are read:

  - every tick from the schedule's first to its cursor fired exactly once: one invocation whose id
    is the one derived from (schedule id, tick time), none skipped (no outage is near a minute);
  - no invocation was created before its tick, and the handler never ran before it;
  - every fired invocation completed, and its handler ran under that id only;
  - the server logged no traceback.

Exits 1 and lists the violations otherwise; prints the figures either way.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import pathlib
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from durio.schedules.state import ScheduleRecord, schedule_key  # noqa: E402
from durio.schedules.transitions import tick_invocation_id  # noqa: E402
from durio.storage.lmdb_store import LmdbStore  # noqa: E402

APP = ROOT / "tests" / "apps" / "schedule_soak_app.py"
LISTENING = re.compile(r"durio (ingress|admin) listening on (http://\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, data_dir: pathlib.Path, log_path: pathlib.Path, beat_log: pathlib.Path) -> None:
        self.data_dir, self.log_path = data_dir, log_path
        self.ports = (free_port(), free_port())
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "BEAT_LOG": str(beat_log)}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        for _ in range(5):
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "durio.cli",
                        "serve",
                        str(APP),
                        "--data-dir",
                        str(self.data_dir),
                        "--ingress",
                        f"127.0.0.1:{self.ports[0]}",
                        "--admin",
                        f"127.0.0.1:{self.ports[1]}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=str(ROOT),
                )
            deadline = time.monotonic() + timeout
            while True:
                output = self.output()[offset:]
                if len({kind for kind, _ in LISTENING.findall(output)}) == 2:
                    return
                if self.process.poll() is not None:
                    if "address already in use" in output.lower():
                        time.sleep(0.5)
                        break  # the dead process's sockets still hold the port
                    raise RuntimeError(f"the server exited with {self.process.returncode}:\n{output[-5000:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the server did not start:\n{output[-5000:]}")
                time.sleep(0.02)
        raise RuntimeError("the server could not start in 5 attempts")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def output(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace") if self.log_path.exists() else ""


def tick_ms(text: str) -> int:
    return int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def read_store(data_dir: pathlib.Path) -> tuple[ScheduleRecord, list]:
    store = LmdbStore(data_dir, readonly=True)
    try:

        def scan(txn):  # type: ignore[no-untyped-def]
            record = ScheduleRecord.from_stored(txn.get_schedule(schedule_key("beat")))
            return record, [invocation for invocation in txn.iter_invocations() if invocation.target.service == "Beat"]

        return store.read(scan)
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of kills (default 120)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--data-dir", default=None, help="where to keep the files (default: a temporary folder)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    folder = pathlib.Path(args.data_dir).parent if args.data_dir else pathlib.Path(tempfile.mkdtemp(prefix="schedule-soak-"))
    data_dir = pathlib.Path(args.data_dir) if args.data_dir else folder / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    beat_log, server_log = folder / "beats.log", folder / "server.log"
    for path in (beat_log, server_log):
        path.unlink(missing_ok=True)
    print(f"schedule soak: seed {seed}, files in {folder}", flush=True)

    server = Server(data_dir, server_log, beat_log)
    server.start()
    started = time.monotonic()
    kills, downtime = 0, 0.0
    while time.monotonic() - started < args.duration:
        time.sleep(rng.uniform(0.3, 4.0))
        server.kill9()
        kills += 1
        dead_for = rng.uniform(0.0, 2.5)
        time.sleep(dead_for)
        down_since = time.monotonic()
        server.start()
        downtime += dead_for + (time.monotonic() - down_since)
    time.sleep(5)  # the last ticks complete
    code = server.terminate()
    ended_ms = int(time.time() * 1000)

    violations: list[str] = []
    if code != 0:
        violations.append(f"the server exited with {code} on SIGTERM")
    if "Traceback" in server.output():
        violations.append("the server logged a traceback (see server.log)")
    record, invocations = read_store(data_dir)
    found, lateness, expected = check(record, invocations, beat_log.read_text().splitlines())
    violations += found
    spec = record.spec
    caught_up = sum(1 for late in lateness if late > 1000)
    print(
        f"schedule soak: {kills} kills in {args.duration:.0f} s (down {downtime:.1f} s in all); {len(expected)} ticks "
        f"from {spec.local_time(expected[0])} to {spec.local_time(expected[-1])} (checked at {ended_ms}); "
        f"{caught_up} fired late (caught up after a restart), lateness median {lateness[len(lateness) // 2]} ms, "
        f"max {lateness[-1]} ms",
        flush=True,
    )
    if violations:
        print(f"schedule soak: {len(violations)} violations:", *violations[:50], sep="\n  ")
        return 1
    print("schedule soak: every tick fired exactly once (ids checked), none twice, none early")
    return 0


def check(record: ScheduleRecord, invocations: list, beat_lines: list[str]) -> tuple[list[str], list[int], list[int]]:
    """(violations, each tick's lateness in ms, the ticks that had to fire) of what storage and the handler's log say."""
    violations: list[str] = []
    spec = record.spec
    by_tick: dict[int, list] = collections.defaultdict(list)
    for invocation in invocations:
        by_tick[tick_ms(invocation.idempotency_key.split("@", 1)[1])].append(invocation)
    if not by_tick:
        return ["nothing fired"], [0], [0]
    first = min(by_tick)
    expected = spec.ticks(first - 1, record.cursor_ms, 1_000_000)
    if record.skipped or record.last_skips:
        violations.append(f"{record.skipped} ticks were skipped: {record.last_skips}")
    missing = [tick for tick in expected if tick not in by_tick]
    if missing:
        violations.append(f"{len(missing)} ticks never fired, e.g. {[spec.local_time(t) for t in missing[:5]]}")
    extra = sorted(set(by_tick) - set(expected))
    if extra:
        violations.append(f"invocations for ticks that are not the schedule's: {extra[:5]}")
    lateness = []
    for tick, fired in by_tick.items():
        if len(fired) != 1:
            violations.append(f"tick {spec.local_time(tick)} fired {len(fired)} times")
        for invocation in fired:
            if invocation.id != tick_invocation_id(spec, tick):
                violations.append(f"tick {spec.local_time(tick)} fired as {invocation.id}, not its derived id")
            if invocation.created_ms < tick:
                violations.append(f"tick {spec.local_time(tick)} fired {tick - invocation.created_ms} ms early")
            if not invocation.is_completed:
                violations.append(f"{invocation.id} (tick {spec.local_time(tick)}) never completed")
            lateness.append(invocation.created_ms - tick)
    ran: dict[int, set[str]] = collections.defaultdict(set)
    for line in beat_lines:
        invocation_id, scheduled_at, wall_ms = line.split(" ")
        tick = tick_ms(scheduled_at)
        ran[tick].add(invocation_id)
        if int(wall_ms) < tick:
            violations.append(f"the handler ran {tick - int(wall_ms)} ms before its tick {scheduled_at}")
    for tick in expected:
        if ran.get(tick) != {tick_invocation_id(spec, tick)}:
            violations.append(f"tick {spec.local_time(tick)} ran as {sorted(ran.get(tick, ()))}")
    return violations, sorted(lateness), expected


if __name__ == "__main__":
    sys.exit(main())
