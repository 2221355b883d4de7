"""A checkout that charges a card: once correctly, once carelessly.

The payment provider deduplicates charges by idempotency key, as real ones do.
`pay` derives its key from `ctx.uuid()`, which is the same on every replay, so
a retried charge is recognised. `careless_pay` makes a fresh key each time its
step runs, so a step that runs again after a crash charges twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import durio as restate


class PaymentProvider:
    """Stands in for Stripe & co: one charge per idempotency key."""

    def __init__(self) -> None:
        self.charges: dict[str, tuple[str, int]] = {}

    def charge(self, order_id: str, amount: int, idempotency_key: str) -> str:
        self.charges.setdefault(idempotency_key, (order_id, amount))
        return f"charge-{idempotency_key[:8]}"

    def charged(self, order_id: str) -> int:
        return sum(amount for order, amount in self.charges.values() if order == order_id)


provider = PaymentProvider()


@dataclass
class Order:
    id: str
    amount: int


checkout = restate.Service("Checkout")


@checkout.handler()
async def pay(ctx: restate.Context, order: Order) -> str:
    idempotency_key = str(ctx.uuid())  # the same on every attempt and every replay
    await ctx.run_typed("charge", provider.charge, restate.RunOptions(), order.id, order.amount, idempotency_key)
    return "paid"


@checkout.handler()
async def careless_pay(ctx: restate.Context, order: Order) -> str:
    # A fresh key every time the step runs: a retried charge looks like a new one.
    await ctx.run_typed("charge", lambda: provider.charge(order.id, order.amount, str(uuid.uuid4())))
    return "paid"
