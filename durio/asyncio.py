"""The official SDK's `restate.asyncio`: combinators over durable futures.

The name is the SDK's; durio's combinators run on whichever loop durio runs on (durio.backend). On the
asyncio backends, asyncio's own gather/wait/wait_for over durable futures work as well.
"""

from durio.sdk.combinators import as_completed, gather, select, wait_completed

__all__ = ["gather", "select", "as_completed", "wait_completed"]
