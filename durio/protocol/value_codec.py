"""A deployment's journal value codec (`durio.app(..., journal_value_codec=...)`), applied where values cross
the protocol: what the server sends is decoded before the handler sees it, and what the handler records is
encoded before it is sent. The server (durio or Restate) stores and forwards the encoded bytes it cannot read.

As in the official SDK, values pass through it (inputs and outputs, state, run results, call and send
parameters and results, awakeable, signal and promise values) and failures do not.
"""

from __future__ import annotations

import copy
import inspect
import typing

from durio.journal import entries as e

# The field of each entry type that holds a value (bytes); other results (ids, state keys, None) are not values.
_VALUE_FIELD: dict[type[e.Entry], str] = {
    e.Input: "value",
    e.Output: "result",
    e.GetState: "value",
    e.SetState: "value",
    e.Call: "value",
    e.OneWayCall: "value",
    e.CompletePromise: "result",
    e.CompleteAwakeable: "result",
    e.SendSignal: "result",
    e.SendNamedSignal: "result",
    e.Completion: "result",
    e.Signal: "result",
    e.NamedSignal: "result",
}


async def resolve(codec_or_provider: typing.Any) -> typing.Any:
    """The codec itself, or the one an async provider (a zero-argument callable) builds."""
    if codec_or_provider is None or hasattr(codec_or_provider, "encode"):
        return codec_or_provider
    codec = codec_or_provider()
    return await codec if inspect.isawaitable(codec) else codec


def encoded(entry: e.Entry, codec: typing.Any) -> e.Entry:
    """A copy of `entry` to send, its value encoded (the journal machine keeps the plain one)."""
    field = _VALUE_FIELD.get(type(entry))
    if codec is None or field is None or not isinstance(getattr(entry, field), bytes):
        return entry
    copied = copy.copy(entry)
    setattr(copied, field, codec.encode(getattr(entry, field)))
    return copied


async def decode_journal(journal: list[e.Entry], codec: typing.Any) -> None:
    """Decode, in place, the values of a journal as the server sent it."""
    if codec is None:
        return
    for entry in journal:
        field = _VALUE_FIELD.get(type(entry))
        if field is not None and isinstance(getattr(entry, field), bytes):
            setattr(entry, field, await codec.decode(getattr(entry, field)))
