"""The endpoint manifest (discovery): what a deployment says about its services, versions v1 to v4."""

from __future__ import annotations

import typing

from durio.kinds import HandlerKind
from durio.sdk.definitions import Handler, ServiceDefinition

MIN_PROTOCOL = 5
MAX_PROTOCOL = 6
MANIFEST_CONTENT_TYPE = "application/vnd.restate.endpointmanifest.v{}+json"
INVOCATION_CONTENT_TYPE = "application/vnd.restate.invocation.v{}"

_SERVICE_TY = {"service": "SERVICE", "object": "VIRTUAL_OBJECT", "workflow": "WORKFLOW"}
_HANDLER_TY = {"exclusive": "EXCLUSIVE", "shared": "SHARED", "workflow": "WORKFLOW"}


def _millis(value: typing.Any) -> int | None:
    return None if value is None else int(value.total_seconds() * 1000)


def lazy_state(state_preload: bool | list[str] | None, enable_lazy_state: bool | None) -> bool | None:
    """The manifest's enableLazyState for the SDK's pair of options: state_preload=False (or a list of keys to
    preload, which manifests up to v4 cannot name: all keys are then fetched when read) means lazy."""
    if state_preload is None:
        return enable_lazy_state
    if isinstance(state_preload, bool):
        return not state_preload
    return True


def _handler_manifest(handler: Handler, version: int) -> dict[str, typing.Any]:
    item: dict[str, typing.Any] = {"name": handler.name}
    if handler.kind is not None:
        item["ty"] = _HANDLER_TY[handler.kind]
    item["input"] = {"required": False, "contentType": handler.accept} if handler.takes_input else {}
    item["output"] = {"contentType": handler.content_type, "setContentTypeIfEmpty": False}
    if version >= 2:
        if handler.description:
            item["documentation"] = handler.description
        if handler.metadata:
            item["metadata"] = dict(handler.metadata)
    if version >= 3:
        for field, option in (
            ("journalRetention", "journal_retention"),
            ("inactivityTimeout", "inactivity_timeout"),
            ("abortTimeout", "abort_timeout"),
        ):
            value = _millis(handler.options.get(option))
            if value is not None:
                item[field] = value
        retention = _millis(
            handler.options.get("workflow_retention" if handler.kind == HandlerKind.WORKFLOW else "idempotency_retention")
        )
        if retention is not None:
            item["workflowCompletionRetention" if handler.kind == HandlerKind.WORKFLOW else "idempotencyRetention"] = retention
        if handler.options.get("ingress_private") is not None:
            item["ingressPrivate"] = bool(handler.options["ingress_private"])
        lazy = lazy_state(handler.options.get("state_preload"), handler.options.get("enable_lazy_state"))
        if lazy is not None:
            item["enableLazyState"] = lazy
    if version >= 4 and handler.invocation_retry_policy is not None:
        item.update(_retry_fields(handler.invocation_retry_policy))
    return item


def _retry_fields(policy: typing.Any) -> dict[str, typing.Any]:
    fields: dict[str, typing.Any] = {}
    if policy.initial_interval is not None:
        fields["retryPolicyInitialInterval"] = _millis(policy.initial_interval)
    if policy.max_interval is not None:
        fields["retryPolicyMaxInterval"] = _millis(policy.max_interval)
    if policy.max_attempts is not None:
        fields["retryPolicyMaxAttempts"] = policy.max_attempts
    if policy.exponentiation_factor is not None:
        fields["retryPolicyExponentiationFactor"] = policy.exponentiation_factor
    if policy.on_max_attempts is not None:
        fields["retryPolicyOnMaxAttempts"] = policy.on_max_attempts.upper()
    return fields


def build_manifest(
    services: typing.Iterable[ServiceDefinition], version: int, protocol_mode: str = "REQUEST_RESPONSE"
) -> dict[str, typing.Any]:
    """The manifest of these services at manifest `version` (1 to 4).

    `protocol_mode`: BIDI_STREAM when the endpoint is reached over HTTP/2, where one request
    stays open for a whole attempt; REQUEST_RESPONSE over HTTP/1.1.
    """
    entries = []
    for service in services:
        entry: dict[str, typing.Any] = {
            "name": service.name,
            "ty": _SERVICE_TY[service.kind],
            "handlers": [_handler_manifest(h, version) for h in service.handlers.values()],
        }
        if version >= 2:
            if service.description:
                entry["documentation"] = service.description
            if service.metadata:
                entry["metadata"] = dict(service.metadata)
        if version >= 3:
            for field, value in (
                ("journalRetention", service.journal_retention),
                ("idempotencyRetention", service.idempotency_retention),
                ("inactivityTimeout", service.inactivity_timeout),
                ("abortTimeout", service.abort_timeout),
            ):
                if value is not None:
                    entry[field] = _millis(value)
            if service.ingress_private is not None:
                entry["ingressPrivate"] = service.ingress_private
            lazy = lazy_state(service.state_preload, service.enable_lazy_state)
            if lazy is not None:
                entry["enableLazyState"] = lazy
        if version >= 4 and service.invocation_retry_policy is not None:
            entry.update(_retry_fields(service.invocation_retry_policy))
        entries.append(entry)
    return {
        "protocolMode": protocol_mode,
        "minProtocolVersion": MIN_PROTOCOL,
        "maxProtocolVersion": MAX_PROTOCOL,
        "services": entries,
    }


def negotiate_manifest_version(accept: str | None) -> int | None:
    """The highest manifest version the caller accepts (v2 when it does not say); None if none we speak."""
    if not accept:
        return 2
    for version in (4, 3, 2, 1):
        if MANIFEST_CONTENT_TYPE.format(version) in accept:
            return version
    return None


def invocation_version(content_type: str | None) -> int | None:
    """The protocol version named by an invocation's content type, if we speak it."""
    if content_type is None:
        return None
    for version in range(MIN_PROTOCOL, MAX_PROTOCOL + 1):
        if content_type.strip() == INVOCATION_CONTENT_TYPE.format(version):
            return version
    return None
