"""The official SDK's `restate.ext.pydantic` (Pydantic AI (RestateAgent) integration): not available in durio.

It drives an asyncio agent framework from inside handlers, and durio runs handlers on Trio, so importing
it says so rather than failing later inside a handler.
"""

raise ImportError(
    "durio does not provide restate.ext.pydantic, the Pydantic AI (RestateAgent) integration: it needs asyncio "
    "inside handlers, and durio runs handlers on Trio. Serve these handlers with the official restate-sdk "
    "as a deployment of a durio server instead."
)
