"""The conformance services on the official restate-sdk, as an ASGI app for hypercorn (remote mode).

CONFORMANCE_IDENTITY_KEY (a `publickeyv1_...` key), when set, makes the app run only requests signed by
its private key, as the suite's E2E_REQUEST_SIGNING does."""

import os

import restate

from tests.conformance.services import services

_key = os.environ.get("CONFORMANCE_IDENTITY_KEY")
app = restate.app(services, identity_keys=[_key] if _key else None)
