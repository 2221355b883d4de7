"""Getting Started and Durable Execution: each step of a subscription is journaled."""

from __future__ import annotations

import durio as restate
from models import SubscriptionRequest
from utils import create_recurring_payment, create_subscription

subscription_service = restate.Service("SubscriptionService")


@subscription_service.handler()
async def add(ctx: restate.Context, req: SubscriptionRequest) -> None:
    payment_id = str(ctx.uuid())

    pay_ref = await ctx.run_typed("pay", create_recurring_payment, restate.RunOptions(), req.creditCard, payment_id)

    for subscription in req.subscriptions:
        await ctx.run_typed(f"add-{subscription}", create_subscription, restate.RunOptions(), req.userId, subscription, pay_ref)
