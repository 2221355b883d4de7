"""Restate's service protocol as bytes, for both sides of the wire: messages, framing, conversion between
frames and journal entries, the manifest, the journal value codec and request identity (sans-IO).

durio.protocol.endpoint serves the protocol (durio.app); durio.actors.remote speaks it to deployments.
Nothing here imports the actors or the ingress (pyproject.toml's import contracts hold it).
"""
