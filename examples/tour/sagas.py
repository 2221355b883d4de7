"""Sagas: on a terminal failure, run the compensations of the steps done so far, in reverse."""

from __future__ import annotations

import typing

import durio as restate
from models import SubscriptionRequest
from utils import create_recurring_payment, create_subscription, remove_recurring_payment, remove_subscription

subscription_saga = restate.Service("SubscriptionSaga")


@subscription_saga.handler()
async def add(ctx: restate.Context, req: SubscriptionRequest) -> None:
    compensations: list[typing.Callable[[], typing.Awaitable[None]]] = []

    try:
        payment_id = str(ctx.uuid())
        compensations.append(lambda: ctx.run_typed("undo-pay", remove_recurring_payment, restate.RunOptions(), payment_id))
        pay_ref = await ctx.run_typed("pay", create_recurring_payment, restate.RunOptions(), req.creditCard, payment_id)

        for subscription in req.subscriptions:
            compensations.append(
                lambda subscription=subscription: ctx.run_typed(
                    f"undo-{subscription}", remove_subscription, restate.RunOptions(), req.userId, subscription
                )
            )
            await ctx.run_typed(
                f"add-{subscription}", create_subscription, restate.RunOptions(), req.userId, subscription, pay_ref
            )
    except restate.TerminalError:
        for compensation in reversed(compensations):
            await compensation()
        raise
