"""Handlers whose observable behaviour must match the official SDK's: failure texts, context classes,
current_context, the request's attempt headers and idempotency key, and refused flow-control scopes.
Used embedded and as a deployment (`app`, served by hypercorn with the Trio worker)."""

from __future__ import annotations

import contextlib
import typing
from datetime import timedelta

import durio
from durio.extensions import current_context

failures: dict[str, int] = {}
seen_in_manager: list[bool] = []
side_effects: list[str] = []


@contextlib.asynccontextmanager
async def sees_the_context() -> typing.AsyncIterator[None]:
    seen_in_manager.append(current_context() is not None)
    yield


behaviour = durio.Service("Behaviour", invocation_context_managers=[sees_the_context])


@behaviour.handler()
async def fails_once(ctx: durio.Context, tag: str) -> str:
    failures[tag] = failures.get(tag, 0) + 1
    if failures[tag] == 1:
        raise ValueError("boom")
    return "recovered"


@behaviour.handler()
async def exhausted(ctx: durio.Context) -> str:
    def always_fails() -> None:
        raise ValueError("always fails")

    try:
        await ctx.run_typed(
            "doomed", always_fails, durio.RunOptions(max_attempts=2, initial_retry_interval=timedelta(milliseconds=10))
        )
    except durio.TerminalError as exc:
        return exc.message
    return "unreachable"


@behaviour.handler()
async def request_info(ctx: durio.Context) -> dict:
    request = ctx.request()
    return {
        "current_context_is_ctx": current_context() is ctx,
        "idempotency_key": request.idempotency_key,
        "attempt_headers": sorted(name.lower() for name in request.attempt_headers),
    }


@behaviour.handler()
async def steps(ctx: durio.Context, tag: str) -> int:
    ctx.run_typed("never awaited", lambda: side_effects.append(f"{tag}: never awaited"))
    first = ctx.run_typed("first", lambda: side_effects.append(f"{tag}: first") or 1)
    second = ctx.run_typed("second", lambda: side_effects.append(f"{tag}: second") or 2)
    await durio.gather(first, second)
    return await first + await second


class Quote:
    """A step's action that is an object with an async __call__ (a configured client, say)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    async def __call__(self) -> str:
        side_effects.append(f"{self.tag}: quoted")
        return f"quote for {self.tag}"


@behaviour.handler()
async def async_object_step(ctx: durio.Context, tag: str) -> str:
    return await ctx.run_typed("quote", Quote(tag))


@behaviour.handler()
async def effects(ctx: durio.Context, tag: str) -> list:
    return sorted(effect for effect in side_effects if effect.startswith(f"{tag}:"))


@behaviour.handler(
    accept="text/plain", content_type="text/plain; charset=utf-8", input_serde=durio.BytesSerde(), output_serde=durio.BytesSerde()
)
async def shout(ctx: durio.Context, text: bytes) -> bytes:
    return text.upper()


@behaviour.handler()
async def scoped(ctx: durio.Context) -> str:
    ctx.scope("tenant-a")
    return "unreachable"


kinds = durio.VirtualObject("Kinds")


@kinds.handler()
async def exclusive(ctx: durio.ObjectContext) -> list:
    return [isinstance(ctx, durio.ObjectContext), isinstance(ctx, durio.ObjectSharedContext)]


@kinds.handler(kind="shared")
async def shared(ctx: durio.ObjectSharedContext) -> list:
    return [isinstance(ctx, durio.ObjectContext), isinstance(ctx, durio.ObjectSharedContext)]


SERVICES = [behaviour, kinds]
app = durio.app(SERVICES)
