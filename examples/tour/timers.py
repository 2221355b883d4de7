"""Durable Timers: wait for the payment confirmation, but no longer than 30 seconds."""

from __future__ import annotations

from datetime import timedelta

import durio as restate
from events import Confirmation, PaymentRequest, PaymentResult, cancel_payment, init_payment

payments_with_timeout = restate.Service("PaymentsWithTimeout")


@payments_with_timeout.handler()
async def process(ctx: restate.Context, req: PaymentRequest) -> PaymentResult:
    confirmation_id, confirmation = ctx.awakeable(type_hint=PaymentResult)

    payment_id = str(ctx.uuid())
    pay_ref = await ctx.run_typed("pay", init_payment, restate.RunOptions(), req, payment_id, confirmation_id)

    # Race between payment confirmation and timeout
    match await restate.select(confirmation=confirmation, timeout=ctx.sleep(timedelta(seconds=30))):
        case ["confirmation", result]:
            return result
        case _:
            # Cancel the payment with external provider
            await ctx.run_typed("cancel-payment", cancel_payment, restate.RunOptions(), pay_ref)
            return PaymentResult(success=False, errorMessage="Payment timeout")


@payments_with_timeout.handler()
async def confirm(ctx: restate.Context, confirmation: Confirmation) -> None:
    ctx.resolve_awakeable(confirmation.id, confirmation.result)
