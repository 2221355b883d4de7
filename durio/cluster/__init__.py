"""A durio cluster on PostgreSQL (preview): PostgreSQL holds the truth, the node's LMDB store is its cache.

schema.py creates and migrates durio's tables; leases.py takes, renews and releases
partition leases on the database's clock; durability.py ships each group commit's
write set in one fenced transaction; node.py joins a node to its cluster (reach the
database, take the leases, ready the local store, heartbeat). Design and measured
costs: research/SCALE-OUT.md, parts B and C.
"""
