"""JSON serialization driven by type hints: plain JSON types, dataclasses, pydantic models, msgspec Structs.

The names and the bytes match the official SDK (None is the empty body), so a
value written by one is read by the other. Unlike the official `DefaultSerde`,
decoding checks the value against the hint, so the ingress can reject a body of
the wrong shape with a 400 before an invocation exists.

`loads` and `dumps` are durio's one JSON codec, and they speak JSON only:
Python's json module reads and writes NaN, Infinity and -Infinity (and reads
1e400 as Infinity), which are not JSON, and which no other JSON parser reads.
Reading them is a SerdeError (the ingress answers 400). Writing them raises
NonFiniteNumber, a TerminalError: the step or handler that produced the value
fails with a message naming it. We rejected writing null instead (JavaScript's
JSON.stringify does), because it changes the value silently, and retrying,
because replaying the same journal computes the same value again.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import math
import sys
import types
import typing

from durio.sdk.errors import ErrorCode, TerminalError

T = typing.TypeVar("T")


class SerdeError(ValueError):
    """A value does not fit its type hint, or bytes are not valid JSON."""


class UnsupportedJson(SerdeError):
    """JSON-like text durio refuses to read: NaN or Infinity, a number beyond a float's range, an integer
    over 4300 digits, nesting too deep. Unlike bytes that are not JSON at all, which an awakeable may carry
    for a BytesSerde, these are refused even where bytes pass through untouched."""


class NonFiniteNumber(SerdeError, TerminalError):
    """A value to write holds NaN or an infinity, which JSON cannot carry: final, as the same code computes it again."""

    def __init__(self, message: str) -> None:
        TerminalError.__init__(self, message, ErrorCode.INTERNAL)


def _pydantic_base() -> type | None:
    try:
        from pydantic import BaseModel  # noqa: PLC0415 (optional dependency)
    except ImportError:
        return None
    return BaseModel


_PYDANTIC_BASE = _pydantic_base()


def is_pydantic(annotation: typing.Any) -> bool:
    return _PYDANTIC_BASE is not None and isinstance(annotation, type) and issubclass(annotation, _PYDANTIC_BASE)


def _msgspec() -> typing.Any:
    # Only if the application imported it: a msgspec.Struct hint or value implies it did, and durio
    # does not pay for importing an optional library nobody uses.
    return sys.modules.get("msgspec")


def is_msgspec(annotation: typing.Any) -> bool:
    msgspec = _msgspec()
    return msgspec is not None and isinstance(annotation, type) and issubclass(annotation, msgspec.Struct)


def _msgspec_convert(value: typing.Any, hint: typing.Any, where: str) -> typing.Any:
    msgspec = _msgspec()
    try:
        return msgspec.convert(value, type=hint)
    except msgspec.ValidationError as exc:
        raise SerdeError(f"{where} does not fit {hint.__name__}: {exc}") from exc


class Serde(typing.Generic[T], abc.ABC):
    """Turns values into bytes and back."""

    @abc.abstractmethod
    def deserialize(self, buf: bytes) -> typing.Optional[T]: ...

    @abc.abstractmethod
    def serialize(self, obj: typing.Optional[T]) -> bytes: ...


class BytesSerde(Serde[bytes]):
    """Passes bytes through untouched."""

    def deserialize(self, buf: bytes) -> typing.Optional[bytes]:
        return buf

    def serialize(self, obj: typing.Optional[bytes]) -> bytes:
        return b"" if obj is None else bytes(obj)


class JsonSerde(Serde[T]):
    """Plain `json` with no type conversion."""

    def deserialize(self, buf: bytes) -> typing.Optional[T]:
        return loads(buf) if buf else None

    def serialize(self, obj: typing.Optional[T]) -> bytes:
        return b"" if obj is None else dumps(obj)


class DefaultSerde(Serde[T]):
    """JSON shaped by an optional type hint (dataclass, pydantic model, plain types)."""

    def __init__(self, type_hint: typing.Optional[typing.Type[T]] = None) -> None:
        self.type_hint = type_hint

    def with_maybe_type(self, type_hint: typing.Optional[typing.Type[T]] = None) -> "DefaultSerde[T]":
        return DefaultSerde(type_hint)

    def deserialize(self, buf: bytes) -> typing.Optional[T]:
        if not buf:
            return None
        hint = self.type_hint
        if is_pydantic(hint):
            return _validate_model_json(hint, buf)
        value = loads(buf)
        if hint is None:
            return value
        return from_json(value, hint)

    def serialize(self, obj: typing.Optional[T]) -> bytes:
        if obj is None:
            return b""
        return dumps(to_json(obj))


class MsgspecJsonSerde(Serde[T]):
    """JSON for one msgspec Struct type (msgspec is optional: install it to use this serde)."""

    def __init__(self, model: typing.Any) -> None:
        try:
            import msgspec  # noqa: F401 (optional dependency: fail here, not at the first value)
        except ImportError as exc:
            raise ImportError("MsgspecJsonSerde needs msgspec: pip install msgspec") from exc
        self.model = model

    def deserialize(self, buf: bytes) -> typing.Optional[T]:
        # durio's parser first, so a Struct gets the same JSON (no NaN, no 1e400) every other handler gets.
        return typing.cast(T, _msgspec_convert(loads(buf), self.model, "the value")) if buf else None

    def serialize(self, obj: typing.Optional[T]) -> bytes:
        return b"" if obj is None else dumps(to_json(obj))


class PydanticJsonSerde(Serde[T]):
    """JSON for one pydantic model class."""

    def __init__(self, model: typing.Any) -> None:
        self.model = model

    def deserialize(self, buf: bytes) -> typing.Optional[T]:
        return _validate_model_json(self.model, buf) if buf else None

    def serialize(self, obj: typing.Optional[T]) -> bytes:
        return b"" if obj is None else typing.cast(typing.Any, obj).model_dump_json().encode()


def _validate_model_json(model: typing.Any, buf: bytes) -> typing.Any:
    # pydantic's own parser reads NaN, Infinity and 1e400: durio's parser sees the bytes first (a second
    # parse, of what is usually a small body), so a model gets the same JSON every other handler gets.
    loads(buf)
    try:
        return model.model_validate_json(buf)
    except Exception as exc:  # pydantic's ValidationError, without importing pydantic
        raise SerdeError(str(exc)) from exc


def _refuse_constant(name: str) -> typing.NoReturn:
    raise UnsupportedJson(f"the body's JSON has {name}, which is not a JSON number (JSON has no NaN or Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise UnsupportedJson(f"the body's JSON has the number {text[:40]}, beyond the range of a JSON number (a 64-bit float)")
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def loads(buf: bytes | str) -> typing.Any:
    """Decoded JSON; a SerdeError (UnsupportedJson for JSON-like text durio refuses) and never another error."""
    try:
        # Strict UTF-8 first: json.loads on bytes would let UTF-8-encoded surrogates through, and guess UTF-16/32.
        return _DECODER.decode(bytes(buf).decode("utf-8") if isinstance(buf, (bytes, bytearray, memoryview)) else buf)
    except SerdeError:
        raise
    except UnicodeDecodeError as exc:
        raise SerdeError(f"the body is not valid UTF-8: {exc.reason} at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise SerdeError(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError:
        raise UnsupportedJson("the body's JSON is nested too deeply") from None
    except ValueError as exc:  # an integer over sys.get_int_max_str_digits() (4300) digits
        raise UnsupportedJson(f"the body's JSON has an integer too long to read: {exc}") from None


def dumps(value: typing.Any) -> bytes:
    """JSON bytes; NonFiniteNumber (a TerminalError) for a value holding NaN or an infinity."""
    try:
        # ASCII escapes: any str JSON can carry (a lone surrogate included) encodes, and the bytes are valid UTF-8.
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:
        where = _non_finite_at(value, "the value")
        if where is None:
            raise
        raise NonFiniteNumber(
            f"{where[0]} is {where[1]!r}, which cannot be written as JSON (JSON has no NaN or Infinity); "
            "return None or a string instead"
        ) from None


def _non_finite_at(value: typing.Any, where: str) -> tuple[str, float] | None:
    """Where in `value` a NaN or infinity is (only looked for once encoding failed)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (where, value)
    if isinstance(value, dict):
        items: typing.Iterable[tuple[str, typing.Any]] = ((f"{where}.{k}", v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for path, item in items:
        found = _non_finite_at(item, path)
        if found is not None:
            return found
    return None


def to_json(value: typing.Any) -> typing.Any:
    """Plain JSON data for a value: dataclasses and pydantic models become dicts."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if _PYDANTIC_BASE is not None and isinstance(value, _PYDANTIC_BASE):
        return typing.cast(typing.Any, value).model_dump(mode="json")
    msgspec = _msgspec()
    if msgspec is not None and isinstance(value, msgspec.Struct):
        return to_json(msgspec.to_builtins(value))
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(v) for v in value]
    raise SerdeError(f"a value of type {type(value).__name__} cannot be written as JSON")


_JSON_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "an array", dict: "an object"}


def _json_name(value: typing.Any) -> str:
    if value is None:
        return "null"
    return _JSON_NAMES.get(type(value), type(value).__name__)


def from_json(value: typing.Any, hint: typing.Any, where: str = "the body") -> typing.Any:
    """Check decoded JSON against a type hint and build dataclasses/pydantic models/msgspec Structs from it."""
    if hint is typing.Any or hint is object:
        return value
    if is_msgspec(hint):
        return _msgspec_convert(value, hint, where)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return from_json(value, arg, where)
            except SerdeError as exc:
                errors.append(str(exc))
        raise SerdeError(errors[0] if len(errors) == 1 else f"{where} matches none of {hint}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise SerdeError(f"{where} must be one of {list(args)}, got {value!r}")
    if origin in (list, typing.List, tuple, set, frozenset) or hint in (list, tuple, set):
        if not isinstance(value, list):
            raise SerdeError(f"{where} must be an array, got {_json_name(value)}")
        item_hint = args[0] if args else typing.Any
        items = [from_json(item, item_hint, f"{where}[{i}]") for i, item in enumerate(value)]
        container = origin or hint
        return items if container in (list, typing.List) else container(items)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise SerdeError(f"{where} must be an object, got {_json_name(value)}")
        value_hint = args[1] if len(args) == 2 else typing.Any
        return {k: from_json(v, value_hint, f"{where}.{k}") for k, v in value.items()}
    if hint is type(None) or hint is None:
        if value is not None:
            raise SerdeError(f"{where} must be null, got {_json_name(value)}")
        return None
    if hint is bool:
        if not isinstance(value, bool):
            raise SerdeError(f"{where} must be a boolean, got {_json_name(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SerdeError(f"{where} must be an integer, got {_json_name(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SerdeError(f"{where} must be a number, got {_json_name(value)}")
        try:
            return float(value)
        except OverflowError:  # an integer beyond a float's range
            raise SerdeError(f"{where} is a number too large for a float") from None
    if hint is str:
        if not isinstance(value, str):
            raise SerdeError(f"{where} must be a string, got {_json_name(value)}")
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass_from_json(value, hint, where)
    if is_pydantic(hint):
        try:
            return hint.model_validate(value)
        except Exception as exc:
            raise SerdeError(f"{where} does not fit {hint.__name__}: {exc}") from exc
    return value  # a hint we do not interpret (a TypedDict, a NewType...): keep the JSON as it is


_DATACLASS_FIELDS: dict[type, tuple[tuple[dataclasses.Field, typing.Any], ...]] = {}


def _dataclass_fields(cls: type) -> tuple[tuple[dataclasses.Field, typing.Any], ...]:
    """A dataclass's fields with their resolved hints, worked out once per class."""
    fields = _DATACLASS_FIELDS.get(cls)
    if fields is None:
        hints = typing.get_type_hints(cls)
        fields = _DATACLASS_FIELDS[cls] = tuple((f, hints.get(f.name, typing.Any)) for f in dataclasses.fields(cls))
    return fields


def _dataclass_from_json(value: typing.Any, hint: type, where: str) -> typing.Any:
    if not isinstance(value, dict):
        raise SerdeError(f"{where} must be an object for {hint.__name__}, got {_json_name(value)}")
    kwargs = {}
    for field, field_hint in _dataclass_fields(hint):
        if field.name in value:
            kwargs[field.name] = from_json(value[field.name], field_hint, f"{where}.{field.name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise SerdeError(f"{where} is missing the field '{field.name}' of {hint.__name__}")
    return hint(**kwargs)


def serde_for_hint(hint: typing.Any) -> Serde[typing.Any]:
    """The default serde for a handler's parameter or return annotation."""
    if is_pydantic(hint):
        return PydanticJsonSerde(hint)
    if is_msgspec(hint):
        return MsgspecJsonSerde(hint)
    return DefaultSerde(hint)
