"""The official SDK's `restate.asyncio`: combinators over durable futures.

The name is the SDK's; durio's combinators run on Trio, like everything else in a durio handler.
"""

from durio.sdk.combinators import as_completed, gather, select, wait_completed

__all__ = ["gather", "select", "as_completed", "wait_completed"]
