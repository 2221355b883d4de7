"""Code written for the official SDK starts on durio: its options are checked as the SDK checks them,
and a file that only defines `app = restate.app([...])` is served by `durio serve`."""

from __future__ import annotations

import pathlib
import typing
from datetime import timedelta

import pytest

import durio
from durio.cli import CliError, load_services
from tests.conftest import TEST_APPS

SDK_STYLE_APP = TEST_APPS / "sdk_style_app.py"


@pytest.mark.parametrize(
    "make",
    [
        lambda: durio.Service("S", ingres_private=True),
        lambda: durio.VirtualObject("O", enable_lazy_stat=True),
        lambda: durio.Workflow("W", retention=timedelta(days=1)),
        lambda: durio.Service("S").handler(ingres_private=True),
        lambda: durio.VirtualObject("O").handler(knd="shared"),
        lambda: durio.Workflow("W").main(idempotency_retention=timedelta(days=1)),  # the SDK's main has workflow_retention
    ],
)
def test_a_misspelt_option_is_a_type_error_as_in_the_sdk(make: typing.Callable[[], object]) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        make()


def test_options_take_the_sdks_positions() -> None:
    # The SDK's 4th positional parameter is inactivity_timeout; a handler's 7th is inactivity_timeout too.
    service = durio.Service("Positional", None, None, timedelta(seconds=5), timedelta(seconds=6))
    assert (service.inactivity_timeout, service.abort_timeout) == (timedelta(seconds=5), timedelta(seconds=6))

    @service.handler(
        "h", "application/json", "application/json", durio.DefaultSerde(), durio.DefaultSerde(), None, timedelta(seconds=7)
    )
    async def h(ctx: durio.Context) -> None:
        pass

    assert service.handlers["h"].options["inactivity_timeout"] == timedelta(seconds=7)


def test_state_preload_and_enable_lazy_state_together_are_refused_as_in_the_sdk() -> None:
    with pytest.raises(ValueError):
        durio.VirtualObject("Both", enable_lazy_state=True, state_preload=True)


def test_load_services_takes_the_services_of_an_app(tmp_path: pathlib.Path) -> None:
    app_file = tmp_path / "only_app.py"
    app_file.write_text(
        "import durio as restate\n"
        "svc = restate.Service('OnlyApp')\n"
        "@svc.handler()\n"
        "async def hi(ctx: restate.Context) -> str:\n"
        "    return 'hi'\n"
        "app = restate.app([svc])\n"
    )
    for ref in (str(app_file), f"{app_file}:app"):
        assert [s.name for s in load_services(ref)] == ["OnlyApp"]
    with pytest.raises(CliError, match="has no attribute 'nothing'"):
        load_services(f"{app_file}:nothing")


@pytest.mark.parametrize("ref", ["", ":app"])
async def test_durio_serve_runs_a_file_written_for_the_sdk_unchanged(server_process: typing.Any, ref: str) -> None:
    server = server_process(f"{SDK_STYLE_APP}{ref}")
    await server.start()
    async with server.client() as client:
        greeting = await client.post("/SdkGreeter/greet", json="Ada")
        assert greeting.status_code == 200, greeting.text
        assert greeting.json() == "Hello Ada (stamped)"
        refused = await client.post("/SdkGreeter/greet", json="")
        assert refused.status_code == 422
        assert (await client.post("/SdkCounter/k/add", json=2)).json() == 2
        assert (await client.post("/SdkCounter/k/add", json=3)).json() == 5
        assert (await client.post("/SdkCounter/k/current")).json() == 5
