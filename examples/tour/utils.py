"""Stand-ins for the external systems the tour talks to: payments, subscriptions, email.

Each prints the line the tour shows, so you can watch (and tests can count)
what really happened. `TOUR_NETFLIX_DOWN=0` brings the Netflix API back up
without editing this file.
"""

from __future__ import annotations

import os
import sys
import uuid

import durio as restate


def log(line: str) -> None:
    # One write per line, so lines printed from concurrent steps never interleave.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def fail_on_netflix(subscription: str) -> None:
    if subscription == "Netflix" and os.environ.get("TOUR_NETFLIX_DOWN", "1") != "0":
        raise RuntimeError("[simulated] Netflix API is down")


def terminal_error_on_disney(subscription: str) -> None:
    if subscription == "Disney":
        raise restate.TerminalError("[simulated] Disney subscription is not available in this region", 400)


def create_recurring_payment(credit_card: str, payment_id: str) -> str:
    log(f">>> Creating recurring payment {payment_id}")
    return f"payRef-{uuid.uuid4()}"


def remove_recurring_payment(payment_id: str) -> None:
    log(f">>> Removing recurring payment {payment_id}")


def create_subscription(user_id: str, subscription: str, payment_ref: str) -> str:
    fail_on_netflix(subscription)
    terminal_error_on_disney(subscription)
    log(f">>> Created subscription {subscription} for user {user_id}")
    return "SUCCESS"


def remove_subscription(user_id: str, subscription: str) -> None:
    log(f">>> Removed subscription {subscription} for user {user_id}")
