"""durio as the Restate server of remote deployments: discovery, the HTTP/1.1 and HTTP/2 clients, and the
driver of an invocation actor's attempt at a deployment (attempt.py).

Beside the actors because the attempt driver works on an InvocationActor (and its deployment's commands are checked here), and discovery is the runtime's;
durio.protocol holds the codec they share with durio.app's endpoint, and imports nothing from here.
"""
