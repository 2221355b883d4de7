"""A bank account as a remote deployment (`durio.app`), for the request-identity tests.

`payout` is RED-TEAM B5's victim: it pays out whatever balance its state holds, so a forged request
that brings its own state would pay out money that was never deposited. Every `run` step is counted:
in EFFECTS (tests that serve the app in-process) and, when IDENTITY_EFFECTS names a file, as a line
there (tests that serve it with hypercorn in another process). IDENTITY_KEYS (comma-separated
`publickeyv1_...`) configures `app`'s identity keys; without it `app` accepts unsigned requests.
"""

from __future__ import annotations

import os

import durio as restate

EFFECTS: list[str] = []

bank = restate.VirtualObject("Bank")


def record(line: str) -> str:
    EFFECTS.append(line)
    path = os.environ.get("IDENTITY_EFFECTS")
    if path:
        with open(path, "a") as file:
            file.write(line + "\n")
    return line


@bank.handler()
async def deposit(ctx: restate.ObjectContext, amount: int) -> int:
    balance = (await ctx.get("balance", type_hint=int) or 0) + amount
    await ctx.run_typed("deposit", record, line=f"DEPOSIT {amount} to {ctx.key()}")
    ctx.set("balance", balance)
    return balance


@bank.handler()
async def payout(ctx: restate.ObjectContext, to: str) -> str:
    balance = await ctx.get("balance", type_hint=int) or 0
    await ctx.run_typed("pay", record, line=f"PAID {balance} to {to} from account {ctx.key()}")
    ctx.set("balance", 0)
    return f"paid {balance}"


services = [bank]
_keys = os.environ.get("IDENTITY_KEYS")
app = restate.app(services, identity_keys=_keys.split(",") if _keys else None)
