"""Ids look and decode like Restate's (vectors worked out from Restate's encoding rules)."""

from __future__ import annotations

import pytest

from durio import ids
from durio.journal.entries import Target

RESTATE_EXAMPLE = "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz"


def test_a_restate_invocation_id_decodes_to_its_partition_key_and_uuid() -> None:
    raw = ids.invocation_id_to_bytes(RESTATE_EXAMPLE)
    assert raw.hex() == "493c42ed1c3cf1bc" + "018e5257b998007db7f4f3f47e809584"
    assert ids.invocation_id_from_bytes(raw) == RESTATE_EXAMPLE


def test_small_values_encode_as_restate_encodes_them() -> None:
    assert (
        ids.invocation_id_from_bytes((1).to_bytes(8, "big") + (1).to_bytes(16, "big")) == "inv_105k1wlNFHb201SZwviYzes2mjOamuMJWw"
    )


def test_awakeable_ids_carry_the_invocation_and_signal_index() -> None:
    awakeable = ids.awakeable_id(RESTATE_EXAMPLE, 17)
    assert awakeable == "sign_1STxC7Rw88bwBjlJXuZgAfbf08_R-gJWEAAAAEQ"
    assert ids.parse_awakeable_id(awakeable) == (RESTATE_EXAMPLE, 17)


def test_the_seeds_awakeable_id_parses() -> None:
    invocation_id, index = ids.parse_awakeable_id("sign_1PrDkbECjgdsBmMfEUQyCnioCP-csLbd2AAAAEQ")
    assert index == 17
    assert ids.is_invocation_id(invocation_id)


@pytest.mark.parametrize(
    "bad",
    ["", "inv_", "inv_2gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz", "inv_1gdJB", "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hb!", "prom_1abc"],
)
def test_malformed_invocation_ids_are_rejected(bad: str) -> None:
    with pytest.raises(ids.InvalidId):
        ids.invocation_id_to_bytes(bad)


@pytest.mark.parametrize("bad", ["sign_1", "sign_1abc", "inv_1gdJBtdVEcM942bjcDmb1c1khoaJe11Hbz", "sign_1!!!!"])
def test_malformed_awakeable_ids_are_rejected(bad: str) -> None:
    with pytest.raises(ids.InvalidId):
        ids.parse_awakeable_id(bad)


@pytest.mark.parametrize("index", [0, 1, 2, 16])
def test_an_awakeable_id_with_a_reserved_signal_index_names_no_awakeable(index: int) -> None:
    """Indexes below 17 are Restate's built-in signals (1 is cancel): no path may complete them as awakeables."""
    reserved = ids.awakeable_id(RESTATE_EXAMPLE, index)
    with pytest.raises(ids.InvalidId, match="does not name an awakeable"):
        ids.parse_awakeable_id(reserved)


def test_idempotent_ids_are_deterministic_per_target_and_key() -> None:
    target = Target("Greeter", "greet")
    first = ids.idempotent_invocation_id(target, "abc")
    assert first == ids.idempotent_invocation_id(target, "abc")
    assert first != ids.idempotent_invocation_id(target, "abd")
    assert first != ids.idempotent_invocation_id(Target("Greeter", "other"), "abc")
    # Restate derives the uuid as the first 16 bytes of SHA-256("ik,Greeter,greet,abc").
    assert ids.invocation_id_to_bytes(first)[8:].hex() == "525648514f1d16907a51b00b82a991c2"


def test_workflow_run_ids_depend_on_workflow_and_key_only() -> None:
    run_id = ids.workflow_run_id("MyWorkflow", "wf-1")
    assert ids.invocation_id_to_bytes(run_id)[8:].hex() == "0cf326db84a0f1ac65e8858b5c7e36e4"


def test_keyed_invocations_share_their_keys_partition_key() -> None:
    a = ids.invocation_id_to_bytes(ids.new_invocation_id("user-1"))
    b = ids.invocation_id_to_bytes(ids.new_invocation_id("user-1"))
    assert a[:8] == b[:8] and a[8:] != b[8:]
