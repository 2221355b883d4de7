"""msgspec Structs work as the official SDK's do: as handler input and output, in state, and through
`MsgspecJsonSerde` (msgspec is optional; these tests need it)."""

from __future__ import annotations

import pathlib

import pytest
import anyio
import anyio.abc

import durio
from durio.serde import MsgspecJsonSerde
from tests.conftest import start_in_process

msgspec = pytest.importorskip("msgspec")


class Order(msgspec.Struct):
    item: str
    quantity: int = 1


class Receipt(msgspec.Struct):
    order: Order
    total: float


shop = durio.VirtualObject("MsgspecShop")


@shop.handler()
async def buy(ctx: durio.ObjectContext, order: Order) -> Receipt:
    assert isinstance(order, Order)
    ctx.set("last", order)
    return Receipt(order=order, total=2.5 * order.quantity)


@shop.handler(kind="shared")
async def last(ctx: durio.ObjectSharedContext) -> Order | None:
    return await ctx.get("last", type_hint=Order)


@shop.handler(input_serde=MsgspecJsonSerde(Order), output_serde=MsgspecJsonSerde(Order))
async def echo(ctx: durio.ObjectContext, order: Order) -> Order:
    return order


async def test_structs_as_input_output_and_state(nursery: anyio.abc.TaskGroup, data_dir: pathlib.Path) -> None:
    server = await start_in_process(nursery, [shop], data_dir)
    response = await server.ingress.post("/MsgspecShop/k/buy", json={"item": "tea", "quantity": 2})
    assert response.status_code == 200, response.text
    assert response.json() == {"order": {"item": "tea", "quantity": 2}, "total": 5.0}
    assert (await server.ingress.post("/MsgspecShop/k/last")).json() == {"item": "tea", "quantity": 2}
    assert (await server.ingress.post("/MsgspecShop/k/echo", json={"item": "cake"})).json() == {"item": "cake", "quantity": 1}


async def test_a_body_that_does_not_fit_the_struct_is_a_400(nursery: anyio.abc.TaskGroup, data_dir: pathlib.Path) -> None:
    server = await start_in_process(nursery, [shop], data_dir)
    response = await server.ingress.post("/MsgspecShop/k/buy", json={"quantity": 2})
    assert response.status_code == 400
    assert "item" in response.text


def test_the_handlers_serdes_are_msgspecs() -> None:
    assert isinstance(shop.handlers["buy"].input_serde, MsgspecJsonSerde)
    assert isinstance(shop.handlers["buy"].output_serde, MsgspecJsonSerde)
    serde = MsgspecJsonSerde(Order)
    assert serde.deserialize(serde.serialize(Order("x", 3))) == Order("x", 3)
    assert serde.serialize(None) == b"" and serde.deserialize(b"") is None
