"""Restate's request identity (v1): the server signs each request to a deployment, the deployment verifies it.

The signer holds an Ed25519 private key (Restate's `request-identity-private-key-pem-file`, PKCS#8 PEM,
as `openssl genpkey -algorithm ed25519` writes it). Every request to a deployment carries

    x-restate-signature-scheme: v1
    x-restate-jwt-v1: <JWT, alg EdDSA, kid publickeyv1_...>

whose claims are `aud` = the request's path relative to the deployment (`/discover`,
`/invoke/{service}/{handler}`), `iat` = now, `nbf` = now - 60 s, `exp` = now + 60 s. A deployment
configured with public keys (`publickeyv1_` + base58 of the 32 raw key bytes) accepts a request only if
its JWT verifies under one of them; a server without a key sends no identity headers (older servers sent
`x-restate-signature-scheme: unsigned`), which such a deployment refuses.

Verification follows the official SDKs' shared core (sdk-shared-core's request_identity, built on the
`jsonwebtoken` crate) rule for rule, so a token is accepted here exactly when the official Python SDK
accepts it: `alg` must be EdDSA; `aud`, `exp` and `nbf` must be present (`iat` is not checked); no
leeway: expired when `exp < now`, not yet valid when `nbf > now` (whole seconds); `aud` (a string, or a
list of which one must match) is compared with the request path cut down to `/invoke/{s}/{h}` or
`/discover`, so an endpoint mounted under a prefix verifies the same tokens. `kid` is not used to pick a
key: every configured key is tried. tests/test_request_identity.py checks the agreement case by case
against the official SDK's own verifier.

Rejected alternatives: PyJWT (a general JWT library brings algorithm negotiation, which is exactly
what must not be negotiable here, and its own idea of leeway and required claims); the `base58`
package (unmaintained since 2021, and base58 is twenty lines). Ed25519 itself comes from
`cryptography`. This module is sans-IO: time is passed in, keys are passed in as text or bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import time
import typing

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SCHEME_HEADER = "x-restate-signature-scheme"
JWT_HEADER = "x-restate-jwt-v1"
SCHEME_V1 = "v1"
SCHEME_UNSIGNED = "unsigned"
KEY_PREFIX = "publickeyv1_"
# A signed token is valid from a minute before it was made to a minute after, as Restate signs them.
VALIDITY_S = 60

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_U64_MAX = 2**64 - 1


class IdentityKeyError(ValueError):
    """An identity key (public `publickeyv1_...`, or a private key's PEM file) cannot be used."""


class IdentityError(Exception):
    """A request's identity did not verify; the message says why (it is sent back with the 401)."""


# ---------------------------------------------------------------- base58 (Bitcoin alphabet)


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, digit = divmod(number, 58)
        digits.append(_B58[digit])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    number = 0
    for position, char in enumerate(text):
        digit = _B58_INDEX.get(char)
        if digit is None:
            raise IdentityKeyError(f"{char!r} at position {position} is not a base58 character")
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


# ---------------------------------------------------------------- keys


def parse_public_key(key: str) -> Ed25519PublicKey:
    """A `publickeyv1_<base58 of the 32-byte Ed25519 public key>` identity key, as Restate logs it at start."""
    if not isinstance(key, str):
        raise IdentityKeyError(f"an identity key is a string starting with {KEY_PREFIX}, not {type(key).__name__}")
    if not key.startswith(KEY_PREFIX):
        raise IdentityKeyError(f"identity keys start with {KEY_PREFIX}: {key!r} does not")
    raw = b58decode(key[len(KEY_PREFIX) :])
    if len(raw) != 32:
        raise IdentityKeyError(f"identity key {key!r} decodes to {len(raw)} bytes; an Ed25519 public key is 32")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_id(public_key: Ed25519PublicKey) -> str:
    """The `publickeyv1_...` form of a public key: what a deployment is configured with."""
    return KEY_PREFIX + b58encode(public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


class RequestSigner:
    """Signs requests to deployments with the server's Ed25519 private key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.key_id = public_key_id(private_key.public_key())
        header = {"typ": "JWT", "alg": "EdDSA", "kid": self.key_id}
        self._encoded_header = _b64encode(json.dumps(header, separators=(",", ":")).encode())

    @classmethod
    def from_pem(cls, pem: bytes, source: str = "the PEM data") -> "RequestSigner":
        # Restate reads exactly one PEM block, a PKCS#8 Ed25519 private key.
        blocks = pem.count(b"-----BEGIN ")
        if blocks != 1:
            raise IdentityKeyError(f"{source} holds {blocks} PEM blocks; one Ed25519 private key (PKCS#8 PEM) is expected")
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise IdentityKeyError(f"{source} is not an unencrypted PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise IdentityKeyError(
                f"{source} holds a key of type {type(key).__name__}, not an Ed25519 private key "
                "(make one with: openssl genpkey -algorithm ed25519 -out private.pem)"
            )
        return cls(key)

    @classmethod
    def from_pem_file(cls, path: str | os.PathLike[str]) -> "RequestSigner":
        try:
            with open(path, "rb") as file:
                pem = file.read()
        except OSError as exc:
            raise IdentityKeyError(f"cannot read the request identity key {os.fspath(path)!r}: {exc.strerror or exc}") from None
        return cls.from_pem(pem, repr(os.fspath(path)))

    def headers(self, path: str, now_s: float | None = None) -> dict[str, str]:
        """The identity headers for a request to `path` (`/discover`, `/invoke/{service}/{handler}`)."""
        now = int(time.time() if now_s is None else now_s)
        claims = {"aud": path, "exp": now + VALIDITY_S, "iat": now, "nbf": max(0, now - VALIDITY_S)}
        message = self._encoded_header + "." + _b64encode(json.dumps(claims, separators=(",", ":")).encode())
        token = message + "." + _b64encode(self._private_key.sign(message.encode("ascii")))
        return {SCHEME_HEADER: SCHEME_V1, JWT_HEADER: token}


# ---------------------------------------------------------------- verification


class IdentityVerifier:
    """Checks the identity headers of requests against the configured public keys (none: accept all)."""

    def __init__(self, keys: typing.Iterable[str] = ()) -> None:
        if isinstance(keys, (str, bytes)):
            raise IdentityKeyError("identity_keys is a list of keys, e.g. identity_keys=['publickeyv1_...']")
        self.key_ids = list(keys)
        self._keys = [parse_public_key(key) for key in self.key_ids]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def verify(self, headers: typing.Iterable[tuple[bytes, bytes]], path: str, now_s: float | None = None) -> None:
        """Raise IdentityError unless the request (ASGI headers, its path) is signed by a configured key."""
        if not self._keys:
            return
        headers = list(headers)
        scheme = _header(headers, SCHEME_HEADER)
        if scheme is None:
            raise IdentityError(
                f"the request carries no {SCHEME_HEADER} header: this endpoint accepts only requests "
                "signed by a Restate server holding one of its identity keys"
            )
        if scheme == SCHEME_UNSIGNED:
            raise IdentityError(
                f"the request is unsigned ({SCHEME_HEADER}: unsigned); this endpoint accepts only "
                "requests signed by a Restate server holding one of its identity keys"
            )
        if scheme != SCHEME_V1:
            raise IdentityError(f"unknown {SCHEME_HEADER} {scheme!r} (expected {SCHEME_V1!r})")
        token = _header(headers, JWT_HEADER)
        if token is None:
            raise IdentityError(f"the request carries no {JWT_HEADER} header")
        self._check_token(token, audience_of(path), int(time.time() if now_s is None else now_s))

    def _check_token(self, token: str, audience: str, now: int) -> None:
        parts = token.split(".")
        if len(parts) != 3:
            raise IdentityError(f"invalid JWT: a token has three dot-separated parts, this one has {len(parts)}")
        encoded_header, encoded_claims, encoded_signature = parts
        header = _json_part(encoded_header, "header")
        algorithm = header.get("alg")
        if algorithm != "EdDSA":
            raise IdentityError(f"invalid JWT: algorithm {algorithm!r}, expected 'EdDSA'")
        claims = _json_part(encoded_claims, "claims")  # parsed before the signature is checked, trusted only after
        signature = _b64decode(encoded_signature, "signature")
        message = f"{encoded_header}.{encoded_claims}".encode("ascii")
        for key in self._keys:
            try:
                key.verify(signature, message)
                break
            except InvalidSignature:
                continue
        else:
            count = (
                "the configured identity key"
                if len(self._keys) == 1
                else f"any of the {len(self._keys)} configured identity keys"
            )
            raise IdentityError(f"invalid JWT: the signature does not verify with {count}")
        _check_claims(claims, audience, now)


def audience_of(path: str) -> str:
    """The audience a request's path must be signed for: `/invoke/{s}/{h}` or `/discover`, without a mount prefix.

    As the official SDKs cut it: the last three segments if the first of them is `invoke`, the last segment if
    it is `discover`, otherwise the whole path."""
    segments = path.split("/")
    if len(segments) >= 4 and segments[-3] == "invoke":
        return "/" + "/".join(segments[-3:])
    if len(segments) >= 2 and segments[-1] == "discover":
        return "/discover"
    return path


def _check_claims(claims: dict[str, typing.Any], audience: str, now: int) -> None:
    exp, nbf, aud = _numeric(claims.get("exp")), _numeric(claims.get("nbf")), _audience(claims.get("aud"))
    for name, value in (("exp", exp), ("nbf", nbf), ("aud", aud)):
        if value is None:
            raise IdentityError(f"invalid JWT: the required claim {name!r} is missing or malformed")
    assert exp is not None and nbf is not None and aud is not None
    if exp < now:
        raise IdentityError(f"invalid JWT: expired {now - exp} s ago (exp {exp}, now {now})")
    if nbf > now:
        raise IdentityError(f"invalid JWT: not valid for another {nbf - now} s (nbf {nbf}, now {now})")
    if audience not in aud:
        shown = aud[0] if len(aud) == 1 else aud
        raise IdentityError(f"invalid JWT: signed for {shown!r}, not for this request's {audience!r}")


def _numeric(value: typing.Any) -> int | None:
    """A NumericDate as the jsonwebtoken crate reads one: an unsigned integer, or a finite float rounded."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= _U64_MAX else None
    if isinstance(value, float) and math.isfinite(value) and 0 <= value < float(_U64_MAX):
        return int(math.floor(value + 0.5))  # Rust's round(): halves away from zero
    return None


def _audience(value: typing.Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def _header(headers: typing.Iterable[tuple[bytes, bytes]], name: str) -> str | None:
    wanted = name.encode()
    for key, value in headers:
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    # Strict base64url without padding, as the jsonwebtoken crate decodes: Python's decoder would skip
    # characters outside the alphabet and accept non-canonical trailing bits.
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise IdentityError(f"invalid JWT: the {what} is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise IdentityError(f"invalid JWT: the {what} is not base64url") from None
    if _b64encode(data) != text:
        raise IdentityError(f"invalid JWT: the {what} is not canonical base64url")
    return data


def _json_part(text: str, what: str) -> dict[str, typing.Any]:
    raw = _b64decode(text, what)

    def refuse_constant(name: str) -> typing.NoReturn:
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(raw, parse_constant=refuse_constant)
    except (ValueError, RecursionError):
        raise IdentityError(f"invalid JWT: the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise IdentityError(f"invalid JWT: the {what} is not a JSON object")
    return value
