"""Concurrent Tasks: all subscriptions run in parallel; the journal records the order they finished."""

from __future__ import annotations

import durio as restate
from models import SubscriptionRequest
from utils import create_recurring_payment, create_subscription

parallel_subscription_service = restate.Service("ParallelSubscriptionService")


@parallel_subscription_service.handler()
async def add(ctx: restate.Context, req: SubscriptionRequest) -> dict:
    payment_id = str(ctx.uuid())
    pay_ref = await ctx.run_typed("pay", create_recurring_payment, restate.RunOptions(), req.creditCard, payment_id)

    # Start all subscriptions in parallel
    subscription_futures = [
        ctx.run_typed(f"add-{subscription}", create_subscription, restate.RunOptions(), req.userId, subscription, pay_ref)
        for subscription in req.subscriptions
    ]

    # Wait for all subscriptions to complete
    await restate.gather(*subscription_futures)

    return {"success": True, "paymentRef": pay_ref}
