"""The official SDK's `restate.ext.langchain` (LangChain (RestateMiddleware) integration): not available in durio.

It drives an asyncio agent framework from inside handlers, and durio runs handlers on Trio, so importing
it says so rather than failing later inside a handler.
"""

raise ImportError(
    "durio does not provide restate.ext.langchain, the LangChain (RestateMiddleware) integration: it needs asyncio "
    "inside handlers, and durio runs handlers on Trio. Serve these handlers with the official restate-sdk "
    "as a deployment of a durio server instead."
)
