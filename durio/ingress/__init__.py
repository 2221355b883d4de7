"""The HTTP side: ingress and admin ASGI apps, the web UI, and the connection loop that serves them."""
