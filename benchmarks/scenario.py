"""What one load generator "request" is: one HTTP exchange, or a chain of them (a cycle).

A scenario is a list of steps run in order on one keep-alive connection; the
latency recorded is the whole cycle's. Paths and bodies are templates whose
`{name}` placeholders are filled per cycle from:

  {key}   a key drawn at random from `keys` keys (k0 … k{keys-1}), the same for every step of the cycle
  {conn}  the connection's index (stable for the whole run, unique across load generator processes)
  {run}   a random token per load generator run, so keys never collide with earlier runs' state
  {n}     the cycle's sequence number on its connection
  {<var>} a value captured from an earlier step's JSON response (`capture`: {var: field})

Only `{identifier}` is a placeholder, so JSON bodies keep their braces.
Templates are split once; a step without placeholders is encoded once.
"""

from __future__ import annotations

import json
import re
import typing
from dataclasses import dataclass, field

from http_wire import Response, encode_request

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
BUILTIN_VARIABLES = frozenset({"key", "conn", "run", "n"})


class ScenarioError(Exception):
    """The scenario is malformed, or a response lacks a field a later step needs."""


class Template:
    """A string with `{name}` placeholders, split once so rendering is a join."""

    def __init__(self, text: str) -> None:
        self.text = text
        pieces = _PLACEHOLDER.split(text)
        # Even indexes are literal text, odd ones are variable names.
        self.literals = pieces[0::2]
        self.names = pieces[1::2]

    @property
    def is_constant(self) -> bool:
        return not self.names

    def render(self, variables: dict[str, str]) -> str:
        if not self.names:
            return self.text
        out = [self.literals[0]]
        for name, literal in zip(self.names, self.literals[1:]):
            out.append(variables[name])
            out.append(literal)
        return "".join(out)


@dataclass
class Step:
    method: str
    path: Template
    body: Template | None
    expect: frozenset[int]
    capture: dict[str, str] = field(default_factory=dict)
    expect_body: Template | None = None
    _constant_request: bytes | None = None

    def request(self, host: str, variables: dict[str, str]) -> bytes:
        if self._constant_request is not None:
            return self._constant_request
        body = None if self.body is None else self.body.render(variables).encode()
        return encode_request(self.method, self.path.render(variables), host, body)

    def prepare(self, host: str) -> None:
        if self.path.is_constant and (self.body is None or self.body.is_constant):
            self._constant_request = self.request(host, {})

    def check_body(self, response: Response, variables: dict[str, str]) -> None:
        if self.expect_body is not None:
            expected = self.expect_body.render(variables).encode()
            if response.body != expected:
                raise ScenarioError(f"expected body {expected[:80]!r}, got {response.body[:80]!r}")

    def take_captures(self, response: Response, variables: dict[str, str]) -> None:
        if not self.capture:
            return
        try:
            document = json.loads(response.body)
        except ValueError:
            raise ScenarioError(f"expected a JSON body to capture from, got {response.body[:80]!r}") from None
        for variable, field_name in self.capture.items():
            value = document.get(field_name) if isinstance(document, dict) else None
            if value is None:
                raise ScenarioError(f"response has no field {field_name!r}: {response.body[:80]!r}")
            variables[variable] = str(value)


@dataclass
class Scenario:
    steps: list[Step]
    keys: int = 1

    @property
    def requests_per_cycle(self) -> int:
        return len(self.steps)


def parse_scenario(spec: dict[str, typing.Any]) -> Scenario:
    """Build a scenario from its JSON form:

    {"keys": 1000, "steps": [{"method": "POST", "path": "/restate/call/Counter/{key}/add",
                              "body": "1", "expect": [200], "capture": {"id": "invocationId"},
                              "expect_body": null}]}

    `expect_body` (a template) makes any other response body an error.
    """
    steps = []
    known = set(BUILTIN_VARIABLES)
    for raw in spec.get("steps", []):
        method = raw.get("method", "POST").upper()
        path = Template(raw["path"])
        if not path.text.startswith("/"):
            raise ScenarioError(f"path must start with '/': {path.text!r}")
        body = None if raw.get("body") is None else Template(raw["body"])
        expect_body = None if raw.get("expect_body") is None else Template(raw["expect_body"])
        for template in (path, body, expect_body):
            for name in template.names if template else ():
                if name not in known:
                    raise ScenarioError(f"unknown placeholder {{{name}}} in {template.text!r} (known: {sorted(known)})")
        capture = dict(raw.get("capture", {}))
        known.update(capture)
        steps.append(Step(method, path, body, frozenset(raw.get("expect", [200])), capture, expect_body))
    if not steps:
        raise ScenarioError("a scenario needs at least one step")
    keys = int(spec.get("keys", 1))
    if keys < 1:
        raise ScenarioError("keys must be at least 1")
    return Scenario(steps, keys)
