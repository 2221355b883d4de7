"""The conformance services on the official restate-sdk, as an ASGI app for hypercorn (remote mode)."""

import restate

from tests.conformance.services import services

app = restate.app(services)
