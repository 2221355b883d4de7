"""The sans-IO invocation state machine: journal entries and their replay. No Trio, LMDB or sockets."""
