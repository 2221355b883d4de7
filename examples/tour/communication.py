"""Resilient Communication: request-response calls, one-way messages and delayed messages.

Every call and send is journaled by the caller and delivered by durio exactly once.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import durio as restate
from utils import log


@dataclass
class PurchaseTicketRequest:
    ticketId: str  # noqa: N815 (the tour's JSON field names)
    price: float
    customerEmail: str  # noqa: N815
    concertDate: str  # noqa: N815


payment_service = restate.Service("PaymentService")
email_service = restate.Service("EmailService")
concert_ticketing_service = restate.Service("ConcertTicketingService")


@payment_service.handler()
async def charge(ctx: restate.Context, req: PurchaseTicketRequest) -> str:
    payment_ref = str(ctx.uuid())
    await ctx.run_typed("charge", lambda: log(f">>> Charged {req.price} to {req.customerEmail}: {payment_ref}"))
    return payment_ref


@email_service.handler()
async def emailTicket(ctx: restate.Context, req: PurchaseTicketRequest) -> None:  # noqa: N802
    await ctx.run_typed("email", lambda: log(f">>> Sent ticket {req.ticketId} to {req.customerEmail}"))


@email_service.handler()
async def sendReminder(ctx: restate.Context, req: PurchaseTicketRequest) -> None:  # noqa: N802
    await ctx.run_typed("remind", lambda: log(f">>> Sent reminder for the concert on {req.concertDate} to {req.customerEmail}"))


def day_before(concert_date: str, now_s: float) -> datetime.timedelta:
    """How long until the day before the concert (nothing to wait for if that day has passed)."""
    concert = datetime.datetime.fromisoformat(concert_date.replace("Z", "+00:00"))
    remind_at = concert - datetime.timedelta(days=1)
    return max(datetime.timedelta(0), remind_at - datetime.datetime.fromtimestamp(now_s, tz=datetime.timezone.utc))


@concert_ticketing_service.handler()
async def buy(ctx: restate.Context, req: PurchaseTicketRequest) -> str:
    # Request-response call - wait for payment to complete
    pay_ref = await ctx.service_call(charge, req)

    # One-way message - fire and forget ticket delivery
    ctx.service_send(emailTicket, req)

    # Delayed message - schedule reminder for day before concert
    ctx.service_send(sendReminder, req, send_delay=day_before(req.concertDate, await ctx.time()))

    return f"Ticket purchased successfully with payment reference: {pay_ref}"
