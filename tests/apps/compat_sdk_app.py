"""Official restate-sdk services for the compatibility regressions: a handler taking raw bytes of any
content type, and a run step that fails terminally with metadata."""

from __future__ import annotations

import restate
from restate.serde import BytesSerde

raw = restate.Service("CompatRaw")


@raw.handler(accept="*/*", content_type="application/octet-stream", input_serde=BytesSerde(), output_serde=BytesSerde())
async def echo(ctx: restate.Context, body: bytes) -> bytes:
    return b"got " + body


@raw.handler()
async def failing_step(ctx: restate.Context) -> str:
    async def fail() -> str:
        raise restate.TerminalError("the step refused", 422, metadata={"reason": "quota", "limit": "3"})

    try:
        await ctx.run_typed("refuse", fail)
    except restate.TerminalError as exc:
        # What the journal gave back on this attempt (or on a replay): message, code and metadata.
        return f"{exc.status_code} {exc.message} {sorted((exc.metadata or {}).items())}"
    return "no failure"


app = restate.app([raw])
