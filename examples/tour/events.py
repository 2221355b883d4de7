"""External Events: an awakeable waits for a payment provider's webhook, for as long as it takes."""

from __future__ import annotations

import json
from dataclasses import dataclass

import durio as restate
from utils import log


@dataclass
class PaymentRequest:
    amount: float
    currency: str
    customerId: str  # noqa: N815 (the tour's JSON field names)
    orderId: str  # noqa: N815


@dataclass
class PaymentResult:
    success: bool
    transactionId: str | None = None  # noqa: N815
    errorMessage: str | None = None  # noqa: N815


@dataclass
class Confirmation:
    id: str
    result: PaymentResult


def init_payment(req: PaymentRequest, payment_id: str, confirmation_id: str) -> str:
    """Pretend to start a payment with a provider that will call our webhook."""
    log(f">>> Initiated payment {payment_id} of {req.amount} {req.currency} for order {req.orderId}")
    body = json.dumps({"id": confirmation_id, "result": {"success": True, "transactionId": "txn-123"}})
    log(f">>> Confirm payment {payment_id} with:\ncurl localhost:8080/restate/call/Payments/confirm --json '{body}'")
    return f"payRef-{payment_id}"


def cancel_payment(pay_ref: str) -> None:
    log(f">>> Cancelled payment {pay_ref}")


payments = restate.Service("Payments")


@payments.handler()
async def process(ctx: restate.Context, req: PaymentRequest) -> PaymentResult:
    # Create awakeable to wait for webhook payment confirmation
    confirmation_id, confirmation = ctx.awakeable(type_hint=PaymentResult)

    # Initiate payment with external provider (Stripe, PayPal, etc.)
    payment_id = str(ctx.uuid())
    await ctx.run_typed("pay", init_payment, restate.RunOptions(), req, payment_id, confirmation_id)

    # Wait for external payment provider to call our webhook
    return await confirmation


@payments.handler()
async def confirm(ctx: restate.Context, confirmation: Confirmation) -> None:
    # Resolve the awakeable to continue the payment flow
    ctx.resolve_awakeable(confirmation.id, confirmation.result)
