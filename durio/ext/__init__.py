"""The official SDK's `restate.ext`: integrations with other libraries.

`durio.ext.tracing` (OpenTelemetry) and `durio.ext.turnstile` work as the SDK's. The AI-agent
integrations (`openai`, `pydantic`, `adk`, `langchain`) are not ported: importing them raises ImportError
saying so.
"""
