"""The official SDK's `restate.ext.langchain` (LangChain (RestateMiddleware) integration): not available in durio.

durio has not ported its durable wrappers (the agent framework itself, being asyncio, runs in handlers
on durio's asyncio backend), so importing it says so rather than failing later inside a handler.
"""

raise ImportError(
    "durio does not provide restate.ext.langchain, the LangChain (RestateMiddleware) integration: durio has not "
    "ported its durable wrappers. Serve these handlers with the official restate-sdk "
    "as a deployment of a durio server instead."
)
