"""The workloads: which requests the load generator sends for each, as scenarios (see scenario.py).

Each targets a service in bench_services.py. A "request" in the results is
one cycle of the scenario: one HTTP call for every workload but awakeable,
whose cycle is three (send the waiter, resolve, attach to its result).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    scenario: dict[str, typing.Any]


def _call(path: str, body: str | None = None, keys: int = 1) -> dict[str, typing.Any]:
    return {"keys": keys, "steps": [{"method": "POST", "path": path, "body": body, "expect": [200]}]}


# The seed's subscription request: one payment step and one step per subscription, three in all.
_SUBSCRIPTION = '{"userId": "user-{conn}-{n}", "creditCard": "4111111111111111", "subscriptions": ["Hulu", "Prime"]}'

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in [
        Workload("noop", "Noop.noop: an invocation with no journal steps", _call("/restate/call/Noop/noop")),
        Workload(
            "steps",
            "Steps.run: three ctx.run_typed steps (the seed's subscription shape)",
            _call("/restate/call/Steps/run", _SUBSCRIPTION),
        ),
        Workload(
            "counter_hot",
            "Counter/<one key>/add: every request queues on the same virtual-object key",
            _call("/restate/call/Counter/{key}/add", "1", keys=1),
        ),
        Workload(
            "counter_spread",
            "Counter/<1 of 1,000 keys>/add: exclusive handlers on many keys",
            _call("/restate/call/Counter/{key}/add", "1", keys=1000),
        ),
        Workload(
            "caller",
            "Caller.call -> Callee.echo: a request-response call between two invocations",
            _call("/restate/call/Caller/call", '"hello"'),
        ),
        Workload("sleeper", "Sleeper.sleep: a 10 ms durable sleep", _call("/restate/call/Sleeper/sleep")),
        Workload(
            "awakeable",
            "Waiter.wait parks an awakeable in Mailbox/<key>; the client resolves it and "
            "attaches to the waiter (3 HTTP requests per cycle)",
            {
                "steps": [
                    # Each connection owns the mailbox {run}-{conn}: one waiter in flight per key, none left from older runs.
                    {
                        "method": "POST",
                        "path": "/restate/send/Waiter/wait",
                        "body": '"{run}-{conn}"',
                        "expect": [202],
                        "capture": {"waiter": "invocationId"},
                    },
                    {
                        "method": "POST",
                        "path": "/restate/call/Mailbox/{run}-{conn}/resolve",
                        "body": '"woken-{n}"',
                        "expect": [200],
                    },
                    # The waiter returns exactly what this cycle's resolve delivered: proof the right awakeable woke.
                    {"method": "GET", "path": "/restate/attach/{waiter}", "expect": [200], "expect_body": '"woken-{n}"'},
                ],
            },
        ),
    ]
}

# What the ceilings send: the same shape as `noop` (a POST without a body), answered by a server that does no work.
CEILING_SCENARIO = _call("/restate/call/Noop/noop")
