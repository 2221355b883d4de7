"""The official SDK's `restate.serde`: how values become bytes in the journal and on the wire."""

from __future__ import annotations

import typing

from durio.sdk.serde import BytesSerde, DefaultSerde, JsonSerde, PydanticJsonSerde, Serde, is_pydantic

T = typing.TypeVar("T")


class MsgspecJsonSerde(Serde[T]):
    """JSON for a `msgspec.Struct` model (msgspec is optional: install it to use this serde)."""

    def __init__(self, model: typing.Any) -> None:
        try:
            import msgspec  # noqa: PLC0415 (optional dependency)
        except ImportError as exc:
            raise ImportError("MsgspecJsonSerde needs msgspec: pip install msgspec") from exc
        self.model = model
        self._json = msgspec.json

    def deserialize(self, buf: bytes) -> typing.Optional[T]:
        if not buf:
            return None
        return typing.cast(T, self._json.decode(buf, type=self.model))

    def serialize(self, obj: typing.Optional[T]) -> bytes:
        if obj is None:
            return b""
        return bytes(self._json.encode(obj))


__all__ = ["Serde", "BytesSerde", "JsonSerde", "DefaultSerde", "PydanticJsonSerde", "MsgspecJsonSerde", "is_pydantic"]
