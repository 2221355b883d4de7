"""The official SDK's `restate.serde`: how values become bytes in the journal and on the wire."""

from durio.sdk.serde import BytesSerde, DefaultSerde, JsonSerde, MsgspecJsonSerde, PydanticJsonSerde, Serde, is_pydantic

__all__ = ["Serde", "BytesSerde", "JsonSerde", "DefaultSerde", "PydanticJsonSerde", "MsgspecJsonSerde", "is_pydantic"]
