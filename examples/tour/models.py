"""The requests of the tour, with the JSON field names the tour's curl lines use."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SubscriptionRequest:
    userId: str  # noqa: N815 (the JSON field names of the tour)
    creditCard: str  # noqa: N815
    subscriptions: list[str] = field(default_factory=list)
