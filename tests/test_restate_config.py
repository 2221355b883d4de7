"""Server defaults from Restate's own configuration: the TOML file, RESTATE_* and DURIO_* variables,
warnings for what durio does not support, and a clear error at start for a bad value."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from durio.actors.runtime import RuntimeConfig
from durio.config import ConfigError, load_settings
from tests.conftest import ROOT, TEST_APPS

RESTATE_TOML = """
default-journal-retention = "2h"
default-idempotency-retention = "1d"
default-workflow-completion-retention = "7d"
cluster-name = "ours"

[default-retry-policy]
initial-interval = "250ms"
exponentiation-factor = 3.0
max-attempts = 5
on-max-attempts = "kill"
max-interval = "1h 30m"

[worker]
internal-queue-length = 1000

[worker.invoker]
inactivity-timeout = "0s"
abort-timeout = "PT30S"
request-identity-private-key-pem-file = "/keys/private.pem"
"""


def test_restates_toml_sets_the_server_defaults(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "restate.toml"
    path.write_text(RESTATE_TOML)
    settings = load_settings(str(path), environ={})
    config = settings.apply(RuntimeConfig())
    backoff = config.invocation_backoff
    assert (backoff.initial_s, backoff.factor, backoff.max_s, backoff.max_attempts, backoff.on_max_attempts) == (
        0.25,
        3.0,
        5400.0,
        5,
        "kill",
    )
    assert config.suspend_after_s == 0.0 and config.remote_inactivity_timeout_s == 0.0
    assert config.remote_abort_timeout_s == 30.0
    assert (config.retention_ms, config.idempotency_retention_ms, config.workflow_retention_ms) == (
        7_200_000,
        86_400_000,
        604_800_000,
    )
    assert settings.request_identity_private_key_pem_file == "/keys/private.pem"
    # what durio does not support is named, not fatal
    assert any("'cluster-name'" in w for w in settings.warnings)
    assert any("'worker.internal-queue-length'" in w for w in settings.warnings)


def test_the_environment_overrides_the_file_and_durio_wins_over_restate(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "restate.toml"
    path.write_text(RESTATE_TOML)
    settings = load_settings(
        str(path),
        environ={
            "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS": "1",
            "RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "10s",
            "DURIO_WORKER__INVOKER__INACTIVITY_TIMEOUT": "2s",
            "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS_TYPO": "3",
            "DURIO_DATA_DIR": "/somewhere",  # durio's own: no warning
        },
    )
    assert settings.retry_policy["max_attempts"] == 1
    assert settings.inactivity_timeout_s == 2.0
    assert [w for w in settings.warnings if "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS_TYPO" in w]
    assert not [w for w in settings.warnings if "DURIO_DATA_DIR" in w]


def test_the_config_file_may_be_named_by_the_environment(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "restate.toml"
    path.write_text('[default-retry-policy]\nmax-attempts = "unlimited"\n')
    assert load_settings(None, environ={"RESTATE_CONFIG": str(path)}).retry_policy == {"max_attempts": None}
    assert load_settings(None, environ={"DURIO_CONFIG_FILE": str(path)}).retry_policy == {"max_attempts": None}


@pytest.mark.parametrize(
    "toml, named",
    [
        ('[worker.invoker]\ninactivity-timeout = "soon"\n', "worker.invoker.inactivity-timeout"),
        ("[default-retry-policy]\nmax-attempts = 0\n", "default-retry-policy.max-attempts"),
        ('[default-retry-policy]\non-max-attempts = "explode"\n', "default-retry-policy.on-max-attempts"),
        ('[default-retry-policy]\nexponentiation-factor = "fast"\n', "default-retry-policy.exponentiation-factor"),
        ("default-idempotency-retention = 5\n", "default-idempotency-retention"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_option_and_the_value(tmp_path: pathlib.Path, toml: str, named: str) -> None:
    path = tmp_path / "restate.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as raised:
        load_settings(str(path), environ={})
    assert named in str(raised.value) and str(path) in str(raised.value)


def test_a_missing_config_file_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings("/nonexistent/restate.toml", environ={})


def _durio(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durio.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def test_durio_server_refuses_to_start_with_a_bad_value(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "restate.toml"
    path.write_text('[worker.invoker]\nabort-timeout = "forever"\n')
    finished = _durio(
        "server",
        "--config-file",
        str(path),
        "--data-dir",
        str(tmp_path / "d"),
        "--ingress",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
    )
    assert finished.returncode == 1
    assert "worker.invoker.abort-timeout" in finished.stderr and "'forever'" in finished.stderr
    env_bad = _durio(
        "server",
        "--data-dir",
        str(tmp_path / "d"),
        "--ingress",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        env={"RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS": "many"},
    )
    assert env_bad.returncode == 1 and "RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS" in env_bad.stderr


async def test_a_configured_retry_policy_applies_to_durio_serve(server_process, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "restate.toml"
    path.write_text(
        'unknown-option = 1\n[default-retry-policy]\ninitial-interval = "10ms"\nmax-attempts = 2\non-max-attempts = "kill"\n'
    )
    durio = server_process(TEST_APPS / "config_app.py", env={"DURIO_CONFIG_FILE": str(path)})
    await durio.start()
    async with durio.client() as client:
        response = await client.post("/restate/call/AlwaysFails/attempt")
    assert response.status_code == 500, response.text
    assert durio.terminate() == 0
    output = durio.output()
    assert "'unknown-option'" in output  # the warning names it
    assert output.count("attempt failing") == 2  # two attempts, then killed
