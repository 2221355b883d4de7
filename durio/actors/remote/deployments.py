"""Remote deployments as the registry sees them: services discovered from an endpoint manifest.

A RemoteHandler answers the same questions a local Handler does (kind, input,
retention, retry policy) so the ingress, the admin API and the runtime treat
both alike; `deployment` tells the invocation actor to run it over the
service protocol instead of calling a function.

Registration makes durio fetch `{uri}/discover` from whatever the admin API is given, with
the headers it is given: the admin port is trusted (and on loopback by default), but what a
fetch may cost and reveal is still bounded. The URI is a plain http:// origin and path (no
query, fragment or credentials, which would steer or hide the path fetched), additional
headers cannot replace the ones that frame the request, the exchange runs under
DISCOVERY_LIMITS, and an error names the status, never echoes the answer's body.
"""

from __future__ import annotations

import datetime
import http
import json
import re
import typing
import urllib.parse
from dataclasses import dataclass, field

from durio import ids
from durio.actors.remote import h2_client, http_client
from durio.kinds import HandlerKind, ServiceKind
from durio.protocol.identity import RequestSigner
from durio.protocol.manifest import MANIFEST_CONTENT_TYPE, MAX_PROTOCOL, MIN_PROTOCOL
from durio.sdk.options import InvocationRetryPolicy
from durio.sdk.serde import BytesSerde, JsonSerde

_KIND = {"SERVICE": ServiceKind.SERVICE, "VIRTUAL_OBJECT": ServiceKind.OBJECT, "WORKFLOW": ServiceKind.WORKFLOW}
_HANDLER_KIND = {"EXCLUSIVE": HandlerKind.EXCLUSIVE, "SHARED": HandlerKind.SHARED, "WORKFLOW": HandlerKind.WORKFLOW}
# A handler whose manifest entry names no kind has its service's default one (a plain service's have none).
_DEFAULT_HANDLER_KIND = {ServiceKind.OBJECT: HandlerKind.EXCLUSIVE, ServiceKind.WORKFLOW: HandlerKind.WORKFLOW}
DISCOVERY_ACCEPT = ", ".join(MANIFEST_CONTENT_TYPE.format(v) for v in (1, 2, 3, 4))
# A manifest is a few KiB: a megabyte is plenty, and a peer that is slow, silent or endless is cut off
# well before the CLI's own 30 s wait for the admin API ends.
DISCOVERY_LIMITS = http_client.Limits(connect_timeout=10.0, read_timeout=10.0, total_timeout=20.0, max_response_bytes=1024 * 1024)
# Headers that frame the request or the connection: durio sets them, additional headers may not.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
        "expect",
    }
)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class DiscoveryError(Exception):
    """The endpoint could not be discovered; the message says why."""


@dataclass
class Deployment:
    id: str
    uri: str
    protocol_version: int
    manifest: dict[str, typing.Any]
    created_ms: int
    sdk: str | None = None
    additional_headers: dict[str, str] = field(default_factory=dict)
    # Registered with use_http_11 (Restate's switch): HTTP/1.1, so request/response, whatever the manifest says.
    use_http_11: bool = False
    # What discovery spoke: HTTP/2 unless asked otherwise (records from before durio spoke HTTP/2 say HTTP/1.1).
    http_version: str = "HTTP/1.1"

    @property
    def protocol_type(self) -> str:
        """BidiStream when the manifest asks for it and the deployment speaks HTTP/2; RequestResponse otherwise."""
        bidi = self.manifest.get("protocolMode", "REQUEST_RESPONSE") == "BIDI_STREAM" and self.http_version == "HTTP/2.0"
        return "BidiStream" if bidi else "RequestResponse"

    def to_record(self) -> dict[str, typing.Any]:
        return {
            "id": self.id,
            "uri": self.uri,
            "protocol_version": self.protocol_version,
            "manifest": self.manifest,
            "created_ms": self.created_ms,
            "sdk": self.sdk,
            "additional_headers": self.additional_headers,
            "use_http_11": self.use_http_11,
            "http_version": self.http_version,
        }

    @classmethod
    def from_record(cls, record: dict[str, typing.Any]) -> "Deployment":
        return cls(**record)


def _duration(ms: typing.Any) -> datetime.timedelta | None:
    return None if ms is None else datetime.timedelta(milliseconds=ms)


@dataclass
class RemoteHandler:
    service_name: str
    service_kind: ServiceKind
    name: str
    kind: HandlerKind | None
    deployment: Deployment
    takes_input: bool
    input_required: bool = False
    input_serde: typing.Any = field(default_factory=JsonSerde)
    output_serde: typing.Any = field(default_factory=JsonSerde)
    input_hint: typing.Any = None
    output_hint: typing.Any = None
    description: str | None = None
    metadata: dict[str, str] | None = None
    invocation_retry_policy: InvocationRetryPolicy | None = None
    options: dict[str, typing.Any] = field(default_factory=dict)
    # The manifest's inactivityTimeout and abortTimeout (the handler's, else its service's): how long the
    # deployment may send nothing during an invocation (their sum) before the attempt is abandoned.
    inactivity_timeout: datetime.timedelta | None = None
    abort_timeout: datetime.timedelta | None = None
    content_type: str = "application/json"  # the manifest's output contentType: the ingress's reply is that
    accept: str | None = None  # the manifest's input contentType: a request's content type must match it


@dataclass
class RemoteService:
    name: str
    kind: ServiceKind
    handlers: dict[str, RemoteHandler]
    deployment: Deployment
    description: str | None = None
    metadata: dict[str, str] | None = None
    journal_retention: datetime.timedelta | None = None
    idempotency_retention: datetime.timedelta | None = None
    invocation_retry_policy: InvocationRetryPolicy | None = None
    ingress_private: bool | None = None  # the manifest's ingressPrivate (v3+); a handler's own, in its options, wins
    enable_lazy_state: bool | None = None  # the manifest's enableLazyState (v3+); a handler's own, in its options, wins


def _retry_policy(spec: dict[str, typing.Any]) -> InvocationRetryPolicy | None:
    if not any(k.startswith("retryPolicy") for k in spec):
        return None
    on_max = spec.get("retryPolicyOnMaxAttempts")
    return InvocationRetryPolicy(
        initial_interval=_duration(spec.get("retryPolicyInitialInterval")),
        max_interval=_duration(spec.get("retryPolicyMaxInterval")),
        max_attempts=spec.get("retryPolicyMaxAttempts"),
        exponentiation_factor=spec.get("retryPolicyExponentiationFactor"),
        on_max_attempts=typing.cast(typing.Any, on_max.lower() if isinstance(on_max, str) else None),
    )


def _flag(value: typing.Any) -> bool | None:
    # Private unless the manifest plainly says false: a malformed flag must not open a handler to the ingress.
    return None if value is None else value is not False


def _is_json(input_spec: dict[str, typing.Any] | None) -> bool:
    """Whether the ingress reads this handler's input as JSON: only when the manifest says its content type
    is JSON (or says nothing, as older manifests do). `*/*`, `application/octet-stream`, `text/plain`, ...
    are bytes passed through untouched, as Restate passes them."""
    content_type = (input_spec or {}).get("contentType")
    if not isinstance(content_type, str):
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _output_content_type(output_spec: dict[str, typing.Any] | None) -> str:
    content_type = (output_spec or {}).get("contentType")
    return content_type if isinstance(content_type, str) and content_type else "application/json"


def services_of(deployment: Deployment) -> list[RemoteService]:
    """The services a deployment's manifest declares."""
    services = []
    for spec in deployment.manifest.get("services", []):
        kind = _KIND[spec["ty"]]
        service = RemoteService(
            name=spec["name"],
            kind=kind,
            handlers={},
            deployment=deployment,
            description=spec.get("documentation"),
            metadata=spec.get("metadata"),
            journal_retention=_duration(spec.get("journalRetention")),
            idempotency_retention=_duration(spec.get("idempotencyRetention")),
            invocation_retry_policy=_retry_policy(spec),
            ingress_private=_flag(spec.get("ingressPrivate")),
            enable_lazy_state=spec.get("enableLazyState") if isinstance(spec.get("enableLazyState"), bool) else None,
        )
        for handler_spec in spec.get("handlers", []):
            ty = handler_spec.get("ty")
            handler_kind = _HANDLER_KIND[ty] if ty else _DEFAULT_HANDLER_KIND.get(kind)
            input_spec = handler_spec.get("input")
            takes_input = input_spec is None or bool(input_spec)
            options: dict[str, typing.Any] = {}
            for manifest_field, option in (
                ("journalRetention", "journal_retention"),
                ("idempotencyRetention", "idempotency_retention"),
                ("workflowCompletionRetention", "workflow_retention"),
            ):
                if handler_spec.get(manifest_field) is not None:
                    options[option] = _duration(handler_spec[manifest_field])
            if handler_spec.get("ingressPrivate") is not None:
                options["ingress_private"] = _flag(handler_spec["ingressPrivate"])
            if isinstance(handler_spec.get("enableLazyState"), bool):
                options["enable_lazy_state"] = handler_spec["enableLazyState"]
            service.handlers[handler_spec["name"]] = RemoteHandler(
                service_name=service.name,
                service_kind=kind,
                name=handler_spec["name"],
                kind=handler_kind,
                deployment=deployment,
                takes_input=takes_input,
                input_required=bool(input_spec and input_spec.get("required")),
                input_serde=JsonSerde() if _is_json(input_spec) else BytesSerde(),
                description=handler_spec.get("documentation"),
                metadata=handler_spec.get("metadata"),
                invocation_retry_policy=_retry_policy(handler_spec),
                options=options,
                inactivity_timeout=_duration(handler_spec.get("inactivityTimeout", spec.get("inactivityTimeout"))),
                abort_timeout=_duration(handler_spec.get("abortTimeout", spec.get("abortTimeout"))),
                content_type=_output_content_type(handler_spec.get("output")),
                accept=(input_spec or {}).get("contentType") if isinstance((input_spec or {}).get("contentType"), str) else None,
            )
        services.append(service)
    return services


def _excerpt(value: typing.Any, size: int = 80) -> str:
    """A bounded rendering of something the endpoint sent, for an error message."""
    text = repr(value)
    return text if len(text) <= size else text[:size] + "..."


def _validate(manifest: typing.Any) -> None:
    if not isinstance(manifest, dict):
        raise DiscoveryError("the manifest is not a JSON object")
    for field_name in ("minProtocolVersion", "maxProtocolVersion", "services"):
        if field_name not in manifest:
            raise DiscoveryError(f"the manifest has no '{field_name}'")
    if manifest.get("protocolMode", "REQUEST_RESPONSE") not in ("REQUEST_RESPONSE", "BIDI_STREAM"):
        raise DiscoveryError(f"unknown protocolMode {_excerpt(manifest.get('protocolMode'))}")
    low, high = manifest["minProtocolVersion"], manifest["maxProtocolVersion"]
    if not (isinstance(low, int) and isinstance(high, int)) or high < MIN_PROTOCOL or low > MAX_PROTOCOL:
        raise DiscoveryError(
            f"the endpoint speaks service protocol versions {_excerpt(low)} to {_excerpt(high)}; "
            f"durio speaks {MIN_PROTOCOL} to {MAX_PROTOCOL}"
        )
    if not isinstance(manifest["services"], list):
        raise DiscoveryError("the manifest's 'services' is not a list")
    for service in manifest["services"]:
        if not isinstance(service, dict) or service.get("ty") not in _KIND or not isinstance(service.get("name"), str):
            raise DiscoveryError(f"a service in the manifest is malformed: {_excerpt(service)}")
        _check_timeouts(service, service["name"])
        for handler in service.get("handlers", []):
            if not isinstance(handler, dict) or not isinstance(handler.get("name"), str):
                raise DiscoveryError(f"a handler of {_excerpt(service['name'])} is malformed: {_excerpt(handler)}")
            if handler.get("ty") is not None and handler["ty"] not in _HANDLER_KIND:
                raise DiscoveryError(
                    f"handler {_excerpt(service['name'])}.{_excerpt(handler['name'])} has an unknown type "
                    f"{_excerpt(handler['ty'])}"
                )
            _check_timeouts(handler, f"{service['name']}.{handler['name']}")


def _check_timeouts(spec: dict[str, typing.Any], name: str) -> None:
    for field_name in ("inactivityTimeout", "abortTimeout"):
        value = spec.get(field_name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise DiscoveryError(f"{_excerpt(name)}'s {field_name} is not a number of milliseconds: {_excerpt(value)}")


def _status_text(status: int) -> str:
    """The status and its standard phrase: the peer's own reason phrase is its text, not ours to echo."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def check_uri(uri: str) -> str:
    """The deployment's base URI (no trailing slash), or a DiscoveryError saying what is wrong with it."""
    try:
        parsed = urllib.parse.urlsplit(uri)
        parsed.port  # noqa: B018 (a port out of range raises here)
    except ValueError as exc:
        raise DiscoveryError(f"{_excerpt(uri)} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise DiscoveryError(f"{_excerpt(uri)} is not an http:// or https:// URL")
    if parsed.query or parsed.fragment or "?" in uri or "#" in uri:
        raise DiscoveryError(f"{_excerpt(uri)} has a query or a fragment; a deployment's URI is an origin and a path")
    if parsed.username is not None or parsed.password is not None:
        raise DiscoveryError("a deployment's URI carries no credentials; send them with additional_headers")
    return uri.rstrip("/")


def check_headers(headers: dict[str, str]) -> None:
    """Additional headers are well-formed and leave the request's framing to durio."""
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise DiscoveryError(f"additional header {_excerpt(name)} is not a valid header name")
        if name.lower() in RESERVED_HEADERS:
            raise DiscoveryError(f"additional header {name!r} is set by durio and cannot be replaced")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise DiscoveryError(f"additional header {name!r} has a value that cannot be sent (a line break or NUL)")


async def discover(
    uri: str,
    now_ms: int,
    additional_headers: dict[str, str] | None = None,
    signer: RequestSigner | None = None,
    use_http_11: bool = False,
    ca_file: str | None = None,
) -> Deployment:
    """Ask the endpoint at `uri` for its manifest (GET {uri}/discover), signed by `signer` if given.

    Over HTTP/2 (h2c with prior knowledge, as Restate asks, or TLS choosing h2 for https://), unless
    `use_http_11`; an endpoint that answers the HTTP/2 preface in HTTP/1.1 (or whose TLS handshake picks
    HTTP/1.1) is asked again over HTTP/1.1, and invoked that way. https:// peers are verified against the
    system's CAs and `ca_file`'s.
    A failure is a DiscoveryError that names the status or the reason, never the body of the answer:
    `uri` may point anywhere the server can reach."""
    base = check_uri(uri)
    check_headers(additional_headers or {})
    headers = {"accept": DISCOVERY_ACCEPT, **(additional_headers or {})}
    if signer is not None:
        headers.update(signer.headers("/discover"))
    http_version = "HTTP/1.1"
    try:
        answer = None
        if not use_http_11:
            try:
                answer = await _fetch_manifest_h2(base + "/discover", headers, ca_file)
                http_version = "HTTP/2.0"
            except h2_client.NotHttp2:
                answer = None
        if answer is None:
            answer = await _fetch_manifest_h1(base + "/discover", headers, ca_file)
    except http_client.ResponseTooLarge:
        raise DiscoveryError(
            f"cannot discover {uri}: the manifest is larger than {DISCOVERY_LIMITS.max_response_bytes} bytes"
        ) from None
    except http_client.HttpClientError as exc:
        raise DiscoveryError(f"cannot discover {uri}: {exc}") from exc
    status, response_headers, body = answer
    content_type = response_headers.get("content-type", "")
    if status != 200:
        raise DiscoveryError(f"{uri}/discover answered {_status_text(status)}")
    if not content_type.startswith("application/vnd.restate.endpointmanifest.v"):
        raise DiscoveryError(f"{uri}/discover answered with content type {_excerpt(content_type)}, not an endpoint manifest")
    try:
        manifest = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the decoder goes
        raise DiscoveryError(f"the manifest of {uri} is not JSON: {exc}") from None
    _validate(manifest)
    version = min(manifest["maxProtocolVersion"], MAX_PROTOCOL)
    return Deployment(
        id=ids.new_deployment_id(),
        uri=base,
        protocol_version=version,
        manifest=manifest,
        created_ms=now_ms,
        sdk=response_headers.get("x-restate-server"),
        additional_headers=dict(additional_headers or {}),
        use_http_11=use_http_11,
        http_version=http_version,
    )


def _is_manifest(status: int, content_type: str) -> bool:
    return status == 200 and content_type.startswith("application/vnd.restate.endpointmanifest.v")


async def _fetch_manifest_h1(url: str, headers: dict[str, str], ca_file: str | None) -> tuple[int, dict[str, str], bytes]:
    async with http_client.request("GET", url, headers, limits=DISCOVERY_LIMITS, ca_file=ca_file) as response:
        body = await response.read() if _is_manifest(response.status, response.headers.get("content-type", "")) else b""
        return response.status, response.headers, body


async def _fetch_manifest_h2(url: str, headers: dict[str, str], ca_file: str | None) -> tuple[int, dict[str, str], bytes]:
    async with h2_client.stream("GET", url, headers, DISCOVERY_LIMITS, end_request=True, ca_file=ca_file) as exchange:
        await exchange.response_started()
        body = await exchange.read() if _is_manifest(exchange.status, exchange.headers.get("content-type", "")) else b""
        return exchange.status, exchange.headers, body
