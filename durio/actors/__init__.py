"""The actor runtime: invocation and key actors, timers, the router, transitions and recovery."""
