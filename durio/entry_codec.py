"""The official SDK's `restate.entry_codec`: the interface of a journal value codec.

durio accepts the type so that code naming it imports; `durio.app(journal_value_codec=...)` refuses a
codec rather than storing values it was meant to encode as they are (see durio.server.app).
"""

from __future__ import annotations

import abc
import typing


class JournalValueCodec(abc.ABC):
    """Transforms serialized journal values on their way to the journal (encode) and back (decode)."""

    @abc.abstractmethod
    def encode(self, buf: bytes) -> bytes:
        """The bytes to store for `buf` (already serialized); called for empty buffers too."""

    @abc.abstractmethod
    async def decode(self, buf: bytes) -> bytes:
        """The serialized value `buf` was stored for."""


JournalValueCodecProvider = typing.Callable[[], typing.Awaitable[JournalValueCodec]]

__all__ = ["JournalValueCodec", "JournalValueCodecProvider"]
