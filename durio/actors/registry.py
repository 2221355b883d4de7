"""Which services exist and where their handlers run.

Read from worker threads (transitions resolve call targets inside the writer's
transaction), so it is only ever replaced whole, never mutated in place.
"""

from __future__ import annotations

import typing

from durio.actors.transitions import TargetInfo
from durio.journal.entries import Target
from durio.kinds import HandlerKind, ServiceKind
from durio.sdk.definitions import Handler, ServiceDefinition


class Registry:
    def __init__(
        self,
        services: typing.Iterable[ServiceDefinition] = (),
        default_retention_ms: int = 24 * 3600 * 1000,
        idempotency_retention_ms: int | None = None,
        workflow_retention_ms: int | None = None,
    ) -> None:
        # The server's defaults (Restate's default-journal-, -idempotency- and -workflow-completion-retention):
        # what a handler or service that sets none of its own keeps; the last two fall back to the first.
        self.default_retention_ms = default_retention_ms
        self.idempotency_retention_ms = idempotency_retention_ms
        self.workflow_retention_ms = workflow_retention_ms
        self._services: dict[str, ServiceDefinition] = {}
        for service in services:
            if service.name in self._services:
                raise ValueError(f"two services are named {service.name}")
            self._services = {**self._services, service.name: service}

    @property
    def services(self) -> dict[str, ServiceDefinition]:
        return self._services

    def check_remote(self, services: typing.Iterable[typing.Any]) -> None:
        """Raise ValueError if these remote services would replace in-process ones."""
        for service in services:
            current = self._services.get(service.name)
            if current is not None and getattr(current, "deployment", None) is None:
                raise ValueError(f"the service {service.name} is already served in-process by this server")

    def add_remote(self, services: typing.Iterable[typing.Any]) -> None:
        """Add (or replace) the services of a remote deployment; in-process services cannot be replaced."""
        services = list(services)
        self.check_remote(services)
        self._services = {**self._services, **{service.name: service for service in services}}

    def remove_remote(self, names: typing.Iterable[str]) -> dict[str, ServiceDefinition]:
        """Stop serving these remote services (their deployment is being removed); returns them."""
        gone = set(names)
        removed = {name: service for name, service in self._services.items() if name in gone}
        self._services = {name: service for name, service in self._services.items() if name not in gone}
        return removed

    def restore(self, removed: dict[str, ServiceDefinition]) -> None:
        """Serve again the services a refused removal took out."""
        self._services = {**self._services, **removed}

    def deployment_of(self, service_name: str) -> typing.Any:
        return getattr(self._services.get(service_name), "deployment", None)

    def service(self, name: str) -> ServiceDefinition | None:
        return self._services.get(name)

    def handler_for(self, target: Target) -> Handler | None:
        service = self._services.get(target.service)
        return None if service is None else service.handlers.get(target.handler)

    def kind_of(self, target: Target) -> HandlerKind | None:
        handler = self.handler_for(target)
        return None if handler is None else handler.kind

    def target_info(self, target: Target) -> TargetInfo | None:
        handler = self.handler_for(target)
        if handler is None:
            return None
        if handler.service_kind != ServiceKind.SERVICE and target.key is None:
            return None
        return TargetInfo(handler.kind, self.retention_ms(handler))

    def retention_ms(self, handler: Handler, idempotent: bool = False) -> int:
        """How long a completed invocation (its result, journal, and a workflow's state) is kept."""
        service = self._services[handler.service_name]
        candidates: tuple[typing.Any, ...]
        if handler.kind == HandlerKind.WORKFLOW:
            candidates = (
                handler.options.get("workflow_retention"),
                handler.options.get("journal_retention"),
                service.journal_retention,
            )
        elif idempotent:
            candidates = (
                handler.options.get("idempotency_retention"),
                service.idempotency_retention,
                handler.options.get("journal_retention"),
                service.journal_retention,
            )
        else:
            candidates = (handler.options.get("journal_retention"), service.journal_retention)
        for value in candidates:
            if value is not None:
                return max(1, int(value.total_seconds() * 1000))
        server_default = (
            self.workflow_retention_ms
            if handler.kind == HandlerKind.WORKFLOW
            else self.idempotency_retention_ms
            if idempotent
            else None
        )
        return self.default_retention_ms if server_default is None else server_default
