"""Services behind a journal value codec (`durio.app(..., journal_value_codec=...)`), served as a deployment."""

from __future__ import annotations

import durio
from durio.entry_codec import JournalValueCodec

PREFIX = b"sealed:"


class Sealed(JournalValueCodec):
    """A stand-in for encryption: reversed bytes behind a prefix, so a stored value is visibly not plain JSON.
    The empty value stays empty (the SDK asks codecs to handle it: Restate wants no body for a handler
    without input)."""

    def encode(self, buf: bytes) -> bytes:
        return PREFIX + buf[::-1] if buf else b""

    async def decode(self, buf: bytes) -> bytes:
        if not buf:
            return b""
        if not buf.startswith(PREFIX):
            raise ValueError(f"not sealed: {buf[:40]!r}")
        return buf[len(PREFIX) :][::-1]


async def make_codec() -> JournalValueCodec:  # an async provider, as the SDK allows
    return Sealed()


vault = durio.VirtualObject("Vault")
helper = durio.Service("VaultHelper")


@helper.handler()
async def shout(ctx: durio.Context, text: str) -> str:
    return text.upper()


@vault.handler()
async def keep(ctx: durio.ObjectContext, secret: str) -> dict:
    stamped = await ctx.run_typed("stamp", lambda: f"[{secret}]")
    loud = await ctx.service_call(shout, stamped)
    ctx.set("secret", loud)
    return {"stamped": stamped, "loud": loud, "kept": await ctx.get("secret", type_hint=str)}


@vault.handler(kind="shared")
async def reveal(ctx: durio.ObjectSharedContext) -> str | None:
    return await ctx.get("secret", type_hint=str)


SERVICES = [vault, helper]
app = durio.app(SERVICES, journal_value_codec=make_codec)
