"""Invocation and awakeable ids that look and decode like Restate's.

An invocation id is a u64 partition key and a u128 uuid: 24 bytes, written as
`inv_1` + base62 of each at a fixed width. Keyed invocations take their
partition key from the key, so one key's invocations share it (and would share
a partition once durio partitions). Idempotent requests and workflow runs get
ids derived from their target as Restate derives them (SHA-256 of the target
and the key), so duplicates meet on the same id.

An awakeable id is `sign_1` + base64url (no padding) of the invocation id's 24
bytes and the u32 signal index. Indexes below FIRST_AWAKEABLE_SIGNAL are
Restate's built-in signals (1 is cancel), so `parse_awakeable_id` refuses them:
it is the one door every completion goes through (the ingress, handler code,
remote deployments, durio.testing), and an id naming the cancel signal would
otherwise let anyone holding an invocation id cancel it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import struct
import time

from durio.kinds import HandlerKind
from durio.journal.entries import FIRST_AWAKEABLE_SIGNAL, Target

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"  # Restate's order
_DIGIT = {c: i for i, c in enumerate(_ALPHABET)}
_PK_WIDTH = 11  # 62**11 > 2**64
_UUID_WIDTH = 22  # 62**22 > 2**128
INVOCATION_PREFIX = "inv_1"
AWAKEABLE_PREFIX = "sign_1"
ID_BYTES = 24


class InvalidId(ValueError):
    """A string that is not an id durio (or Restate) could have made."""


_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # two digits at a time: half the big-int divisions


def _encode_base62(value: int, size: int, width: int) -> str:
    # Restate base62-encodes the value's big-endian bytes read as a little-endian
    # number (a byte swap on the machines it runs on); we match it digit for digit.
    number = int.from_bytes(value.to_bytes(size, "big"), "little")
    digits = []
    for _ in range(width // 2):
        number, pair = divmod(number, 3844)
        digits.append(_PAIRS[pair])
    if width % 2:
        digits.append(_ALPHABET[number % 62])
    return "".join(reversed(digits))


def _decode_base62(text: str, size: int) -> int:
    number = 0
    for char in text:
        digit = _DIGIT.get(char)
        if digit is None:
            raise InvalidId(f"'{char}' is not a base62 digit")
        number = number * 62 + digit
    if number >= 1 << (8 * size):
        raise InvalidId("out of range")
    return int.from_bytes(number.to_bytes(size, "little"), "big")


def _format(partition_key: int, uuid: int) -> str:
    text = INVOCATION_PREFIX + _encode_base62(partition_key, 8, _PK_WIDTH) + _encode_base62(uuid, 16, _UUID_WIDTH)
    return _remember(text, struct.pack(">Q", partition_key) + uuid.to_bytes(16, "big"))


def partition_key_of(key: str) -> int:
    """A stable 64-bit hash of an object or workflow key."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def random_seed(invocation_id: str) -> int:
    """The seed of an invocation's ctx.random(): derived from its id, so every replay draws the same values.
    In-process contexts and the StartMessage sent to a remote deployment (protocol V6+) both use this one."""
    return int.from_bytes(hashlib.blake2b(invocation_id.encode(), digest_size=8).digest(), "big")


def new_invocation_id(key: str | None = None, now_ms: int | None = None, partition_key: int | None = None) -> str:
    """A fresh id whose uuid is a ULID (48-bit milliseconds, 80 random bits), as Restate's are.

    An unkeyed one gets `partition_key` when given (a partition of the worker that makes it), else a random one."""
    if key is not None:
        partition_key = partition_key_of(key)
    elif partition_key is None:
        partition_key = secrets.randbits(64)
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    return _format(partition_key, (millis & (1 << 48) - 1) << 80 | secrets.randbits(80))


def idempotent_invocation_id(target: Target, idempotency_key: str) -> str:
    """The id every request with this target and idempotency key gets (Restate's derivation)."""
    parts = ["ik", target.service, *([target.key] if target.key is not None else []), target.handler, idempotency_key]
    return _derived(parts, target.key if target.key is not None else idempotency_key)


def workflow_run_id(workflow: str, key: str) -> str:
    """The id of a workflow's run for one key: the run happens once per key."""
    return _derived(["wf", workflow, key], key)


def derived_id(parts: list[str], partition_source: str) -> str:
    """An id in the invocation-id format derived from `parts`, in the partition of `partition_source`.

    Schedules name themselves with one (durio.schedules.state.schedule_key)."""
    return _derived(parts, partition_source)


def _derived(parts: list[str], partition_source: str) -> str:
    digest = hashlib.sha256(",".join(parts).encode()).digest()
    return _format(partition_key_of(partition_source), int.from_bytes(digest[:16], "big"))


# Ids become storage keys, and storage keys ids, many times over an invocation's life, and base62
# is slow in Python, so recently made or seen ids are remembered both ways (bounded: cleared when full).
_RAW_CACHE: dict[str, bytes] = {}
_ID_CACHE: dict[bytes, str] = {}
_RAW_CACHE_LIMIT = 200_000


def _remember(invocation_id: str, raw: bytes) -> str:
    if len(_RAW_CACHE) >= _RAW_CACHE_LIMIT:
        _RAW_CACHE.clear()
        _ID_CACHE.clear()
    _RAW_CACHE[invocation_id] = raw
    _ID_CACHE[raw] = invocation_id
    return invocation_id


def invocation_id_to_bytes(invocation_id: str) -> bytes:
    raw = _RAW_CACHE.get(invocation_id)
    if raw is None:
        raw = _parse(invocation_id)
        _remember(invocation_id, raw)
    return raw


def _parse(invocation_id: str) -> bytes:
    """The 24 raw bytes of an id: the partition key, then the uuid, big-endian."""
    if not isinstance(invocation_id, str) or not invocation_id.startswith(INVOCATION_PREFIX):
        raise InvalidId(f"{invocation_id!r} is not an invocation id (they start with '{INVOCATION_PREFIX}')")
    body = invocation_id[len(INVOCATION_PREFIX) :]
    if len(body) != _PK_WIDTH + _UUID_WIDTH:
        raise InvalidId(f"{invocation_id!r} is not an invocation id: wrong length")
    try:
        partition_key = _decode_base62(body[:_PK_WIDTH], 8)
        uuid = _decode_base62(body[_PK_WIDTH:], 16)
    except InvalidId as exc:
        raise InvalidId(f"{invocation_id!r} is not an invocation id: {exc}") from None
    return struct.pack(">Q", partition_key) + uuid.to_bytes(16, "big")


def invocation_id_from_bytes(raw: bytes) -> str:
    known = _ID_CACHE.get(raw)
    if known is not None:
        return known
    if len(raw) != ID_BYTES:
        raise InvalidId(f"an invocation id has {ID_BYTES} bytes, not {len(raw)}")
    return _format(struct.unpack(">Q", raw[:8])[0], int.from_bytes(raw[8:], "big"))


def is_invocation_id(text: str) -> bool:
    try:
        invocation_id_to_bytes(text)
    except InvalidId:
        return False
    return True


def awakeable_id(invocation_id: str, signal_index: int) -> str:
    raw = invocation_id_to_bytes(invocation_id) + struct.pack(">I", signal_index)
    return AWAKEABLE_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def parse_awakeable_id(text: str) -> tuple[str, int]:
    """The invocation id and signal index inside an awakeable id; InvalidId for a reserved signal's index."""
    if not isinstance(text, str) or not text.startswith(AWAKEABLE_PREFIX):
        raise InvalidId(f"{text!r} is not an awakeable id (they start with '{AWAKEABLE_PREFIX}')")
    body = text[len(AWAKEABLE_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError as exc:
        raise InvalidId(f"{text!r} is not an awakeable id: not base64url") from exc
    if len(raw) != ID_BYTES + 4:
        raise InvalidId(f"{text!r} is not an awakeable id: wrong length")
    signal_index = struct.unpack(">I", raw[ID_BYTES:])[0]
    if signal_index < FIRST_AWAKEABLE_SIGNAL:
        raise InvalidId(
            f"{text!r} does not name an awakeable: its signal index {signal_index} is reserved for built-in signals "
            f"(1 is cancel); awakeables start at {FIRST_AWAKEABLE_SIGNAL}"
        )
    return invocation_id_from_bytes(raw[:ID_BYTES]), signal_index


def callee_invocation_id(target: Target, idempotency_key: str | None, handler_kind: str | None, now_ms: int | None = None) -> str:
    """The id a call or send gets: deterministic for idempotency keys and workflow runs, fresh otherwise."""
    if handler_kind == HandlerKind.WORKFLOW and target.key is not None:
        return workflow_run_id(target.service, target.key)
    if idempotency_key is not None:
        return idempotent_invocation_id(target, idempotency_key)
    return new_invocation_id(target.key, now_ms)


def new_deployment_id() -> str:
    """`dp_1` and a ULID, as Restate names deployments."""
    ulid = (int(time.time() * 1000) & (1 << 48) - 1) << 80 | secrets.randbits(80)
    return "dp_1" + _encode_base62(ulid, 16, _UUID_WIDTH)
