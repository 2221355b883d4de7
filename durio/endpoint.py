"""The official SDK's `restate.endpoint`: `Endpoint`, a builder of the ASGI app `durio.app` returns."""

from __future__ import annotations

import typing

from durio.entry_codec import JournalValueCodec, JournalValueCodecProvider
from durio.sdk.definitions import Service, ServiceDefinition, VirtualObject, Workflow
from durio.server import app


class Endpoint:
    """The services of one deployment, and how it is served; `.app()` gives the ASGI app."""

    def __init__(self) -> None:
        self.services: dict[str, ServiceDefinition] = {}
        self.protocol: typing.Literal["bidi", "request_response"] | None = None  # None: the default
        self.identity_keys: list[str] = []
        self.journal_value_codec: JournalValueCodec | JournalValueCodecProvider | None = None

    def bind(self, *services: ServiceDefinition) -> Endpoint:
        for service in services:
            if not isinstance(service, (Service, VirtualObject, Workflow)):
                raise ValueError(f"Invalid service type {service!r}")
            if service.name in self.services:
                raise ValueError(f"Service {service.name} already exists")
            self.services[service.name] = service
        return self

    def streaming_protocol(self) -> Endpoint:
        self.protocol = "bidi"
        return self

    def request_response_protocol(self) -> Endpoint:
        self.protocol = "request_response"
        return self

    def identity_key(self, identity_key: str) -> Endpoint:
        self.identity_keys.append(identity_key)
        return self

    def set_journal_value_codec(self, codec_or_provider: JournalValueCodec | JournalValueCodecProvider) -> Endpoint:
        self.journal_value_codec = codec_or_provider
        return self

    def app(self) -> typing.Any:
        return app(list(self.services.values()), self.protocol, self.identity_keys or None, self.journal_value_codec)


__all__ = ["Endpoint", "app"]
