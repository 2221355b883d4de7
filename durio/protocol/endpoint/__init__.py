"""durio as a deployment of a Restate server (`durio.app`): the ASGI app, one attempt's host, the request stream.

The server's side of the same wire (durio calling remote deployments) is durio.actors.remote; what both
sides share, the sans-IO codec, is the rest of durio.protocol.
"""

from durio.protocol.endpoint.app import EndpointApp

__all__ = ["EndpointApp"]
