"""How long an object key and a state or promise name may be: what every layer checks before storing one.

The bounds come from the storage key layout (durio/storage/schema.py), but the SDK, the ingress and
schedules check them before anything reaches storage, so they live in this leaf: importing it costs
nothing and pulls in no LMDB or msgpack.
"""

from __future__ import annotations

# LMDB keys are at most 511 bytes; a state key is service + object key + state name with their lengths.
MAX_OBJECT_KEY_BYTES = 256
MAX_NAME_BYTES = 128  # state and promise names
MAX_SERVICE_NAME_BYTES = 100


def key_problem(key: str) -> str | None:
    """Why an object or workflow key cannot be stored, or None."""
    return _size_problem(key, MAX_OBJECT_KEY_BYTES, "keys")


def name_problem(name: str) -> str | None:
    """Why a state or promise name cannot be stored, or None."""
    return _size_problem(name, MAX_NAME_BYTES, "names")


def _size_problem(text: str, limit: int, what: str) -> str | None:
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid Unicode"
    if size > limit:
        return f"it is {size} bytes long; {what} are at most {limit} bytes"
    return None
