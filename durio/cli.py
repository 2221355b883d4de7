"""The `durio` command: run a server, and operate one through its admin API."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import pathlib
import sys
import typing

from durio.sdk.definitions import Service, VirtualObject, Workflow

DEFAULT_DATA_DIR = "./.durio"
DEFAULT_INGRESS = "127.0.0.1:8080"
DEFAULT_ADMIN = "127.0.0.1:9070"


class CliError(Exception):
    """A message for the user; the command exits with status 1."""


def load_services(app: str) -> list[typing.Any]:
    """APP is path/to/file.py, package.module, or package.module:attr (default attr: `services`)."""
    module_ref, _, attr = app.partition(":")
    if module_ref.endswith(".py") or os.sep in module_ref:
        path = pathlib.Path(module_ref).resolve()
        if not path.is_file():
            raise CliError(f"no such file: {module_ref}")
        # Let the file import its neighbours, as `python file.py` would.
        sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    else:
        sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_ref)
        except ModuleNotFoundError as exc:
            raise CliError(f"cannot import {module_ref}: {exc}") from exc
    name = attr or "services"
    services = getattr(module, name, None)
    if services is None:
        raise CliError(f"{module_ref} has no attribute '{name}' (a list of durio services)")
    if isinstance(services, (Service, VirtualObject, Workflow)):
        services = [services]
    services = list(services)
    for service in services:
        if not isinstance(service, (Service, VirtualObject, Workflow)):
            raise CliError(f"{module_ref}:{name} holds {service!r}, which is not a durio Service, VirtualObject or Workflow")
    return services


def _address(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT")
    return f"{host or '127.0.0.1'}:{port}"


def _add_server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=os.environ.get("DURIO_DATA_DIR", DEFAULT_DATA_DIR),
                        help="where LMDB keeps the journal (env DURIO_DATA_DIR, default ./.durio)")
    parser.add_argument("--ingress", type=_address, default=os.environ.get("DURIO_INGRESS", DEFAULT_INGRESS),
                        help="ingress HOST:PORT (env DURIO_INGRESS, default 127.0.0.1:8080)")
    parser.add_argument("--admin", type=_address, default=os.environ.get("DURIO_ADMIN", DEFAULT_ADMIN),
                        help="admin API and UI HOST:PORT (env DURIO_ADMIN, default 127.0.0.1:9070)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="durio", description="Durable execution for Python, in the style of Restate.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server with APP's services in-process")
    serve.add_argument("app", help="path/to/file.py, package.module or package.module:attr")
    _add_server_flags(serve)

    server = commands.add_parser("server", help="run the server alone, for remote deployments")
    _add_server_flags(server)
    return parser


def _configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("DURIO_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("durio.http.hypercorn").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("serve", "server"):
            _configure_logging()
            from durio.server import serve  # noqa: PLC0415 (keep `durio --help` fast)

            services = load_services(args.app) if args.command == "serve" else []
            serve(services, data_dir=args.data_dir, ingress=args.ingress, admin=args.admin)
            return 0
    except CliError as exc:
        print(f"durio: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
