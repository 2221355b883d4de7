"""A handler that always fails with a retryable error, for the configured default retry policy."""

import logging

import durio as restate

always_fails = restate.Service("AlwaysFails")
log = logging.getLogger("config_app")


@always_fails.handler()
async def attempt(ctx: restate.Context) -> str:
    log.warning("attempt failing")
    raise RuntimeError("not this time")


services = [always_fails]
