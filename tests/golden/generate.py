"""Write the golden journals: run each handler once and store its journal frames as they are on disk.

    .venv/bin/python -m tests.golden.generate [CASE ...]

Name cases to write only those (a new case must not rewrite the journals earlier versions wrote).
"""

from __future__ import annotations

import json
import pathlib
import shutil
import sys
import tempfile

import msgpack
import trio

from durio.actors.runtime import open_runtime
from tests.conftest import invoke
from tests.golden.golden_services import services

HERE = pathlib.Path(__file__).parent
CASES = {"steps": ("steps", "ada"), "race": ("race", None), "saga": ("saga", None), "signals": ("signals", None)}


async def main(names: list[str]) -> None:
    folder = tempfile.mkdtemp()
    try:
        async with open_runtime(services, folder) as runtime:
            for name, (handler, body) in CASES.items():
                if names and name not in names:
                    continue
                result = await invoke(runtime, "Golden", handler, body)
                records = await runtime.store.read(lambda txn: list(txn.iter_invocations()))
                record = next(r for r in records if r.target.handler == handler)
                frames = await runtime.store.read(lambda txn, i=record.id: txn.raw_journal(i))
                (HERE / f"{name}.golden").write_bytes(
                    msgpack.packb(
                        {
                            "invocation_id": record.id,
                            "handler": handler,
                            "frames": frames,
                            "output": json.dumps(result),
                        },
                        use_bin_type=True,
                    )
                )
                print(f"{name}: {len(frames)} entries")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    trio.run(main, sys.argv[1:])
