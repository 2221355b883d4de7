"""Worker processes: one server's partitions spread over several processes of one machine.

A supervising parent (supervisor.py) forks the workers and restarts any that
dies. Each worker owns the partitions whose locks it holds (ownership.py),
serves the ingress and admin ports it shares with its siblings, and forwards
what belongs to another worker's partitions over the local channel (peers.py).
"""
