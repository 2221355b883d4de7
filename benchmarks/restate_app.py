"""The official SDK's entry point for the benchmark: bench_services.py served by `restate-sdk`, behind a Restate server.

    python -m hypercorn --config <hypercorn-config.toml> benchmarks/restate_app.py:app

The counterpart of durio_app.py, without the adapter: bench_services.py is
written against the official SDK, so here `import restate` is the real
package (restate-sdk from PyPI) and the file runs unchanged. compare.py
starts this under hypercorn and registers it with the Restate server.

No protocol is forced: the SDK answers discovery in the mode the server
reaches it with (bidi streaming over HTTP/2, which is what a Restate server
uses for a deployment registered as plain http://...).

One adjustment, on the SDK side only: restate-sdk 1.3 turns a handler's
JSON input into the annotated type only for msgspec Structs and Pydantic
models. A @dataclass annotation (Steps.run's SubscriptionRequest) stays a
plain dict and the handler fails with AttributeError on `req.creditCard`;
the SDK's typed DefaultSerde would decode it, but only with the optional
`dacite` package (restate-sdk[serde]), which this project does not install.
durio decodes dataclass inputs itself. So handlers whose input is a
dataclass, and whose serde is still the SDK's untyped default, get
DataclassSerde below: json.loads, then the dataclass's constructor (what
the user of SDK 1.3 writes as `handler(input_serde=...)`; no field type
checks, so if anything a little cheaper than durio's decoding). The handler
code is unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import typing

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import restate  # noqa: E402
from restate.serde import DefaultSerde, Serde  # noqa: E402

from bench_services import services  # noqa: E402


class DataclassSerde(Serde[typing.Any]):
    """JSON to and from one dataclass, for a handler's input."""

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def deserialize(self, buf: bytes) -> typing.Any:
        return None if not buf else self.cls(**json.loads(buf))

    def serialize(self, obj: typing.Any) -> bytes:
        return json.dumps(None if obj is None else dataclasses.asdict(obj)).encode()


def _decode_dataclass_inputs(all_services: list[restate.Service | restate.VirtualObject]) -> list[str]:
    """Give handlers with a @dataclass input a DataclassSerde; return their names."""
    adjusted = []
    for service in all_services:
        for handler in service.handlers.values():
            io = handler.handler_io
            annotation = getattr(io.input_type, "annotation", None)
            serde = io.input_serde
            if dataclasses.is_dataclass(annotation) and type(serde) is DefaultSerde and getattr(serde, "type_hint", None) is None:
                io.input_serde = DataclassSerde(annotation)
                adjusted.append(f"{service.name}.{handler.name}")
    return adjusted


DATACLASS_INPUTS = _decode_dataclass_inputs(services)

app = restate.app(services)

__all__ = ["DATACLASS_INPUTS", "app"]
