"""Prove the checkout charges exactly once, whatever crashes when — and catch the careless one."""

from __future__ import annotations

import pytest

from durio.testing import TestClient, crash_at_every_step
from examples.testing.checkout import checkout, provider


def make_scenario(handler: str):  # type: ignore[no-untyped-def]
    async def scenario(client: TestClient) -> str:
        return await client.call("Checkout", handler, {"id": "order-1", "amount": 30})

    return scenario


def charged_once(result: str) -> None:
    assert result == "paid"
    assert provider.charged("order-1") == 30, f"charged {provider.charged('order-1')}, not 30"


async def test_pay_charges_once_whatever_crashes_when(crash_matrix) -> None:
    report = await crash_matrix([checkout], make_scenario("pay"), charged_once, reset=provider.charges.clear)
    assert report.crash_points >= 10


async def test_the_matrix_catches_a_charge_that_is_not_idempotent(tmp_path) -> None:
    with pytest.raises(AssertionError, match="charged 60, not 30"):
        await crash_at_every_step(
            [checkout], make_scenario("careless_pay"), charged_once, data_dir=tmp_path, reset=provider.charges.clear
        )
