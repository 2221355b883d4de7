"""The official SDK's `restate.types`: `HarnessEnvironment`, what `create_test_harness` yields."""

from __future__ import annotations

from dataclasses import dataclass

from durio.client_types import RestateClient


@dataclass
class HarnessEnvironment:
    """The running test environment."""

    ingress_url: str
    """The ingress the tests call."""

    admin_api_url: str
    """The admin API (durio's, which answers Restate's admin routes durio implements)."""

    client: RestateClient
    """An ingress client for `ingress_url`."""


__all__ = ["HarnessEnvironment"]
