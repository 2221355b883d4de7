"""Server defaults from Restate's own configuration: its TOML file and its RESTATE_* environment variables.

A team moving from restate-server keeps its `restate.toml` and its environment: the options durio
supports are read from the same key paths, with the same value formats (durations such as "10s",
"1h 30m" or ISO-8601 "PT10S"; `max-attempts = "unlimited"`), and the environment overrides the file
as in Restate (`RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS=1`, `RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT=0s`:
`__` separates tables, `_` stands for `-`). The `DURIO_` prefix works too, and wins over `RESTATE_`.

An option durio does not support is a warning naming it, so a copied file still starts the server; a bad
value of a supported option is a ConfigError naming the option, where it came from and the value, before
anything starts. Environment variables with the DURIO_ prefix that name no Restate option are durio's own
(DURIO_DATA_DIR, DURIO_HTTP_*, ...) and are not warned about; unknown RESTATE_* variables are.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field

from durio.backoff import Backoff
from durio.durations import BadDuration, parse_duration_ms

# Where durio looks for the file when no --config-file is given (Restate reads RESTATE_CONFIG).
CONFIG_FILE_ENV = ("DURIO_CONFIG_FILE", "RESTATE_CONFIG")
_ENV_PREFIXES = ("RESTATE_", "DURIO_")
# Restate's variables that configure its CLI or its logging, not the server's options.
_RESTATE_ENV_NOT_OPTIONS = frozenset({"RESTATE_CONFIG", "RESTATE_LOG_FILTER", "RESTATE_LOG_FORMAT"})


class ConfigError(ValueError):
    """A supported option has a value durio cannot use; the message names the option, its source and the value."""


@dataclass
class ServerSettings:
    """What the configuration sets; None (or empty) where it says nothing, so durio's own defaults apply."""

    retry_policy: dict[str, typing.Any] = field(default_factory=dict)  # Backoff fields
    inactivity_timeout_s: float | None = None
    abort_timeout_s: float | None = None
    journal_retention_ms: int | None = None
    idempotency_retention_ms: int | None = None
    workflow_retention_ms: int | None = None
    request_identity_private_key_pem_file: str | None = None
    warnings: list[str] = field(default_factory=list)

    def apply(self, config: typing.Any) -> typing.Any:
        """A copy of the RuntimeConfig `config` with these settings over it."""
        changes: dict[str, typing.Any] = {}
        if self.retry_policy:
            changes["invocation_backoff"] = dataclasses.replace(config.invocation_backoff, **self.retry_policy)
        if self.inactivity_timeout_s is not None:
            # 0s suspends at every wait: each step replays the journal (it surfaces non-determinism).
            changes["suspend_after_s"] = self.inactivity_timeout_s
            changes["remote_inactivity_timeout_s"] = self.inactivity_timeout_s
        if self.abort_timeout_s is not None:
            changes["remote_abort_timeout_s"] = self.abort_timeout_s
        if self.journal_retention_ms is not None:
            changes["retention_ms"] = self.journal_retention_ms
        if self.idempotency_retention_ms is not None:
            changes["idempotency_retention_ms"] = self.idempotency_retention_ms
        if self.workflow_retention_ms is not None:
            changes["workflow_retention_ms"] = self.workflow_retention_ms
        return dataclasses.replace(config, **changes) if changes else config


# ---------------------------------------------------------------- values


def _duration_ms(value: typing.Any) -> int:
    if not isinstance(value, str):
        raise ConfigError('expected a duration such as "10s", "1h 30m" or "PT10S"')
    try:
        return parse_duration_ms(value)
    except BadDuration as exc:
        raise ConfigError(str(exc)) from None


def _seconds(value: typing.Any) -> float:
    return _duration_ms(value) / 1000


def _retention(value: typing.Any) -> int:
    return max(1, _duration_ms(value))


def _factor(value: typing.Any) -> float:
    number = _number(value)
    if not 1.0 <= number <= 1000:
        raise ConfigError("expected a factor of at least 1.0")
    return number


def _number(value: typing.Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError("expected a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError("expected a number")
    return float(value)


def _attempts(value: typing.Any) -> int | None:
    if value == "unlimited":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError('expected a number of attempts of at least 1, or "unlimited"')
    return value


def _on_max_attempts(value: typing.Any) -> str:
    if not isinstance(value, str) or value.lower() not in ("pause", "kill"):
        raise ConfigError('expected "pause" or "kill"')
    return value.lower()


def _path(value: typing.Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError("expected a file path")
    return value


# Each supported key path: what it sets in ServerSettings (a field, or a retry_policy Backoff field) and how
# its value is read.
_RETRY = "retry_policy."
_OPTIONS: dict[str, tuple[str, typing.Callable[[typing.Any], typing.Any]]] = {
    "default-retry-policy.initial-interval": (_RETRY + "initial_s", _seconds),
    "default-retry-policy.exponentiation-factor": (_RETRY + "factor", _factor),
    "default-retry-policy.max-interval": (_RETRY + "max_s", _seconds),
    "default-retry-policy.max-attempts": (_RETRY + "max_attempts", _attempts),
    "default-retry-policy.on-max-attempts": (_RETRY + "on_max_attempts", _on_max_attempts),
    "worker.invoker.inactivity-timeout": ("inactivity_timeout_s", _seconds),
    "worker.invoker.abort-timeout": ("abort_timeout_s", _seconds),
    "default-journal-retention": ("journal_retention_ms", _retention),
    "default-idempotency-retention": ("idempotency_retention_ms", _retention),
    "default-workflow-completion-retention": ("workflow_retention_ms", _retention),
    "worker.invoker.request-identity-private-key-pem-file": ("request_identity_private_key_pem_file", _path),
    # Restate's older, top-level spelling of the same.
    "request-identity-private-key-pem-file": ("request_identity_private_key_pem_file", _path),
}
_TABLES = frozenset(path.rsplit(".", 1)[0] for path in _OPTIONS if "." in path)
_BACKOFF_FIELDS = frozenset(f.name for f in dataclasses.fields(Backoff))


# ---------------------------------------------------------------- sources


def _flatten(table: dict[str, typing.Any], prefix: str = "") -> typing.Iterator[tuple[str, typing.Any]]:
    for key, value in table.items():
        path = prefix + key
        if isinstance(value, dict) and (path in _TABLES or any(t.startswith(path + ".") for t in _TABLES)):
            yield from _flatten(value, path + ".")
        else:
            yield path, value


def _from_file(path: str) -> list[tuple[str, str, typing.Any]]:
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read it: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return [(key, f"config file {path}", value) for key, value in _flatten(document)]


def _from_environment(environ: typing.Mapping[str, str]) -> list[tuple[str, str, typing.Any]]:
    found = []
    # RESTATE_ first, so that DURIO_ (applied later) wins.
    for prefix in _ENV_PREFIXES:
        for name, value in sorted(environ.items()):
            if not name.startswith(prefix) or name in _RESTATE_ENV_NOT_OPTIONS:
                continue
            path = ".".join(part.lower().replace("_", "-") for part in name[len(prefix) :].split("__"))
            if prefix == "DURIO_" and path not in _OPTIONS:
                continue  # one of durio's own variables
            found.append((path, f"environment variable {name}", value))
    return found


def load_settings(config_file: str | None = None, environ: typing.Mapping[str, str] | None = None) -> ServerSettings:
    """The settings from `config_file` (else the file DURIO_CONFIG_FILE or RESTATE_CONFIG names) and the environment.

    Raises ConfigError for a file that cannot be read or a supported option with a bad value."""
    environ = os.environ if environ is None else environ
    config_file = config_file or next((environ[name] for name in CONFIG_FILE_ENV if environ.get(name)), None)
    settings = ServerSettings()
    entries = (_from_file(config_file) if config_file else []) + _from_environment(environ)
    for path, source, value in entries:
        option = _OPTIONS.get(path)
        if option is None:
            settings.warnings.append(f"{source}: durio does not support the option '{path}'; it is ignored")
            continue
        target, read = option
        try:
            parsed = read(value)
        except ConfigError as exc:
            raise ConfigError(f"{source}: bad value {value!r} for '{path}': {exc}") from None
        if target.startswith(_RETRY):
            name = target[len(_RETRY) :]
            assert name in _BACKOFF_FIELDS
            settings.retry_policy[name] = parsed
        else:
            setattr(settings, target, parsed)
    return settings
