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

from durio.addresses import AddressError, parse_address
from durio.admin_client import AdminClient, AdminError
from durio.backend import BACKENDS
from durio.cli_output import describe_invocation, print_json, sql_table, table
from durio.cli_schedules import ScheduleCommandError, add_schedule_commands, run_schedule_command

DEFAULT_DATA_DIR = "./.durio"
DEFAULT_INGRESS = "127.0.0.1:8080"
DEFAULT_ADMIN = "127.0.0.1:9070"


class CliError(Exception):
    """A message for the user; the command exits with status 1."""


def load_services(app: str) -> list[typing.Any]:
    """APP is path/to/file.py, package.module, or package.module:attr (default: `services`, else `app`)."""
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
    # Without an attribute: a `services` list, else the `app` a file written for the official SDK defines.
    name = attr or ("services" if hasattr(module, "services") or not hasattr(module, "app") else "app")
    target = getattr(module, name, None)
    if target is None:
        raise CliError(f"{module_ref} has no attribute '{name}' (a list of durio services, or app = durio.app([...]))")
    from durio.server import services_of  # noqa: PLC0415 (keep `durio --help` fast)

    try:
        services = services_of(target)
    except TypeError as exc:
        raise CliError(f"{module_ref}:{name}: {exc}") from None
    from durio.schedules.declare import declared_schedules  # noqa: PLC0415

    try:
        declared_schedules(services)  # a schedule that cannot be made stops the start here, with a message
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return services


def _address(value: str) -> str:
    """HOST:PORT, :PORT (loopback) or [IPv6]:PORT, as durio.serve reads them (durio.addresses)."""
    try:
        return str(parse_address(value))
    except AddressError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("DURIO_DATA_DIR", DEFAULT_DATA_DIR),
        help="where LMDB keeps the journal (env DURIO_DATA_DIR, default ./.durio)",
    )
    parser.add_argument(
        "--ingress",
        type=_address,
        default=os.environ.get("DURIO_INGRESS", DEFAULT_INGRESS),
        help="ingress HOST:PORT (env DURIO_INGRESS, default 127.0.0.1:8080)",
    )
    parser.add_argument(
        "--admin",
        type=_address,
        default=os.environ.get("DURIO_ADMIN", DEFAULT_ADMIN),
        help="admin API and UI HOST:PORT (env DURIO_ADMIN, default 127.0.0.1:9070)",
    )
    parser.add_argument(
        "--config-file",
        metavar="FILE",
        default=None,
        help="Restate's TOML configuration (restate.toml): the options durio supports are read from it "
        "(env DURIO_CONFIG_FILE or RESTATE_CONFIG; RESTATE_*/DURIO_* variables override it)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="the event loop: trio, asyncio (for handlers that use asyncio libraries) or uvloop "
        "(pip install 'durio[uvloop]'); env DURIO_BACKEND, default trio",
    )
    parser.add_argument(
        "--deployment-ca-file",
        metavar="FILE",
        default=None,
        help="trust this CA file's certificates for https:// deployments, besides the system's (env DURIO_DEPLOYMENT_CA_FILE)",
    )
    parser.add_argument(
        "--workers",
        default=os.environ.get("DURIO_WORKERS", "auto"),
        type=_workers,
        help="worker processes that share the partitions and the ports: a number, or auto (one per usable "
        "CPU; env DURIO_WORKERS, default auto)",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=None,
        help="the number of partitions of a new data directory (default 24; an existing one keeps its own)",
    )
    parser.add_argument(
        "--cluster",
        metavar="URL",
        default=os.environ.get("DURIO_CLUSTER") or None,
        help="run as a node of a cluster on this PostgreSQL (postgresql://...), which holds the truth; "
        "the data directory is its local cache (one worker per node; env DURIO_CLUSTER)",
    )
    parser.add_argument(
        "--node-name",
        metavar="NAME",
        default=os.environ.get("DURIO_NODE_NAME") or None,
        help="this node's name in the cluster (env DURIO_NODE_NAME, default the host name)",
    )
    parser.add_argument(
        "--cluster-lease",
        metavar="SECONDS",
        type=float,
        default=float(os.environ.get("DURIO_CLUSTER_LEASE", "10")),
        help="how long a node's partition leases last unrenewed (env DURIO_CLUSTER_LEASE, default 10)",
    )
    parser.add_argument(
        "--advertise-url",
        metavar="URL",
        default=os.environ.get("DURIO_ADVERTISE_URL") or None,
        help="where the other nodes of the cluster reach this one, http://HOST:PORT (it listens there for them; "
        "env DURIO_ADVERTISE_URL; default a free port on 127.0.0.1, enough for nodes on one machine)",
    )
    parser.add_argument(
        "--request-identity-private-key-pem-file",
        metavar="FILE",
        default=None,
        help="sign requests to remote deployments with this Ed25519 key, as Restate does "
        "(env RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE or DURIO_...)",
    )


def _workers(value: str) -> str:
    if value == "auto":
        return value
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number or 'auto', not {value!r}") from None
    if not 1 <= count <= 256:
        raise argparse.ArgumentTypeError(f"between 1 and 256, not {count}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="durio", description="Durable execution for Python, in the style of Restate.")
    # The admin commands' flags are also taken before the command: `durio --admin H:P services list`.
    parser.add_argument("--admin", dest="global_admin", type=_address, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", dest="global_json", action="store_true", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server with APP's services in-process")
    serve.add_argument("app", help="path/to/file.py, package.module or package.module:attr")
    _add_server_flags(serve)

    server = commands.add_parser("server", help="run the server alone, for remote deployments")
    _add_server_flags(server)

    def admin_command(parent: typing.Any, name: str, help_text: str) -> argparse.ArgumentParser:
        command = parent.add_parser(name, help=help_text)
        command.add_argument(
            "--admin", type=_address, default=None, help="the admin API HOST:PORT (env DURIO_ADMIN, default 127.0.0.1:9070)"
        )
        command.add_argument("--json", action="store_true", help="print JSON for scripts")
        return command

    deployments = commands.add_parser("deployments", help="remote deployments").add_subparsers(dest="action", required=True)
    register = admin_command(deployments, "register", "register a remote deployment by its URL")
    register.add_argument("url")
    register.add_argument(
        "--use-http1.1",
        dest="use_http_11",
        action="store_true",
        help="talk HTTP/1.1 to it, so request/response (default: HTTP/2, a bidirectional stream per attempt)",
    )
    admin_command(deployments, "list", "list the registered deployments")
    remove = admin_command(deployments, "remove", "remove a deployment no unfinished invocation needs")
    remove.add_argument("id")

    services_group = commands.add_parser("services", help="services").add_subparsers(dest="action", required=True)
    admin_command(services_group, "list", "list the services and their handlers")

    cluster = admin_command(commands, "cluster", "the server's nodes, worker processes and partitions, with their owners")
    cluster.set_defaults(action=None)

    invocations = commands.add_parser("invocations", help="invocations").add_subparsers(dest="action", required=True)
    listing = admin_command(invocations, "list", "list invocations, newest first")
    listing.add_argument("--status", help="pending, scheduled, ready, running, backing-off, suspended, paused or completed")
    listing.add_argument("--service")
    listing.add_argument("--limit", type=int, default=50)
    for action, help_text in (
        ("describe", "status, journal timeline, retries and last error"),
        ("cancel", "cancel: the handler sees TerminalError(409) and its compensations run"),
        ("kill", "kill at once, with the calls it waits for; no compensations"),
        ("purge", "forget a completed invocation (frees its idempotency key)"),
        ("pause", "stop retrying until resumed"),
        ("resume", "run a paused or suspended invocation now"),
    ):
        admin_command(invocations, action, help_text).add_argument("id")

    sql = admin_command(
        commands,
        "sql",
        "query invocations, journals and state with SQL (Restate's tables: "
        "sys_invocation, sys_journal, state, sys_service, sys_deployment, ...)",
    )
    sql.add_argument("query", help="one SELECT statement")
    sql.set_defaults(action=None)

    state = commands.add_parser("state", help="virtual object and workflow state").add_subparsers(dest="action", required=True)
    state_get = admin_command(state, "get", "the state of one key")
    state_get.add_argument("service")
    state_get.add_argument("key")
    add_schedule_commands(commands, admin_command)
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
            from durio.backend import BackendError  # noqa: PLC0415
            from durio.config import ConfigError  # noqa: PLC0415 (keep `durio --help` fast)
            from durio.protocol.identity import IdentityKeyError  # noqa: PLC0415
            from durio.server import CaFileError, ClusterOptionError, serve  # noqa: PLC0415

            if args.command == "serve":
                # In this process `restate` is durio, so a file written for the official SDK (`import restate`,
                # `from restate.exceptions import ...`) is served as it is. (Not in load_services: a test
                # process that calls it may also hold the real SDK.)
                import durio  # noqa: PLC0415

                durio.install_as_restate()
            services = load_services(args.app) if args.command == "serve" else []
            from durio.partitions import PartitionCountError  # noqa: PLC0415
            from durio.workers.supervisor import PortInUse  # noqa: PLC0415

            try:
                return serve(
                    services,
                    data_dir=args.data_dir,
                    ingress=args.ingress,
                    admin=args.admin,
                    request_identity_private_key_pem_file=args.request_identity_private_key_pem_file,
                    config_file=args.config_file,
                    backend=args.backend,
                    deployment_ca_file=args.deployment_ca_file,
                    workers=args.workers,
                    partitions=args.partitions,
                    cluster=args.cluster,
                    node_name=args.node_name,
                    cluster_lease_s=args.cluster_lease,
                    advertise_url=args.advertise_url,
                )
            except (
                IdentityKeyError,
                ConfigError,
                BackendError,
                CaFileError,
                PartitionCountError,
                PortInUse,
                ClusterOptionError,
            ) as exc:
                raise CliError(str(exc)) from None
        run_admin_command(args)
    except (CliError, AdminError) as exc:
        print(f"durio: {exc}", file=sys.stderr)
        return 1
    return 0


def _admin_address(args: argparse.Namespace) -> str:
    """The admin API's address: the flag (after or before the command), then DURIO_ADMIN, then the default."""
    if args.admin or args.global_admin:
        return typing.cast(str, args.admin or args.global_admin)
    try:
        return _address(os.environ.get("DURIO_ADMIN", DEFAULT_ADMIN))
    except argparse.ArgumentTypeError as exc:
        raise CliError(f"DURIO_ADMIN: {exc}") from None


def run_admin_command(args: argparse.Namespace) -> None:
    args.json = args.json or args.global_json
    client = AdminClient(_admin_address(args))
    key = (args.command, args.action)
    if args.command == "schedules":
        try:
            run_schedule_command(client, args)
        except ScheduleCommandError as exc:
            raise CliError(str(exc)) from None
    elif key == ("deployments", "register"):
        result = client.request("POST", "/deployments", {"uri": args.url, **({"use_http_11": True} if args.use_http_11 else {})})
        if args.json:
            print_json(result)
        else:
            print(f"registered {result.get('id')} with services: {', '.join(s['name'] for s in result.get('services', []))}")
    elif key == ("deployments", "remove"):
        client.request("DELETE", f"/deployments/{args.id}")
        print_json({"id": args.id, "removed": True}) if args.json else print(f"removed {args.id}")
    elif key == ("deployments", "list"):
        result = client.get("/deployments")
        print_json(result) if args.json else print(
            table(result["deployments"], [("id", "ID"), ("uri", "URI"), ("created_at", "CREATED")])
        )
    elif key == ("services", "list"):
        result = client.get("/services")
        if args.json:
            print_json(result)
            return
        rows = [
            {
                "name": s["name"],
                "ty": s["ty"],
                "handlers": ", ".join(h["name"] + (f" ({h['ty'].lower()})" if h.get("ty") else "") for h in s["handlers"]),
                "deployment": s.get("deployment_id"),
            }
            for s in result["services"]
        ]
        print(table(rows, [("name", "SERVICE"), ("ty", "TYPE"), ("handlers", "HANDLERS"), ("deployment", "DEPLOYMENT")]))
    elif key == ("invocations", "list"):
        result = client.get("/invocations", status=args.status, service=args.service, limit=args.limit)
        if args.json:
            print_json(result)
            return
        rows = [dict(view, error=(view.get("last_failure") or {}).get("message")) for view in result["invocations"]]
        print(
            table(
                rows,
                [
                    ("id", "ID"),
                    ("target", "TARGET"),
                    ("status", "STATUS"),
                    ("retry_count", "RETRIES"),
                    ("created_at", "CREATED"),
                    ("error", "LAST ERROR"),
                ],
            )
        )
    elif key == ("invocations", "describe"):
        view = client.get(f"/invocations/{args.id}")
        print_json(view) if args.json else print(describe_invocation(view))
    elif args.command == "invocations":
        result = client.request("PATCH", f"/invocations/{args.id}/{args.action}")
        done = {"cancel": "cancellation requested", "kill": "killed", "purge": "purged", "pause": "paused", "resume": "resumed"}
        if args.json:
            print_json({"id": args.id, "action": args.action, "status": result.get("status")})
        else:
            print(f"{args.id}: {done[args.action]}")
    elif args.command == "cluster":
        result = client.get("/cluster")
        if args.json:
            print_json(result)
            return
        for node in result["nodes"]:
            alive = "" if node.get("alive", True) else " (down)"
            print(f"node {node['name']}{alive}: {len(node['workers'])} workers")
            print(
                table(
                    [
                        {
                            "worker": w.get("worker"),
                            "pid": w.get("pid") or "restarting",
                            "partitions": ", ".join(str(p) for p in w.get("partitions", [])),
                        }
                        for w in node["workers"]
                    ],
                    [("worker", "WORKER"), ("pid", "PID"), ("partitions", "PARTITIONS")],
                )
            )
        print(
            table(
                [
                    {
                        "id": p["id"],
                        "range": f"{p['key_range'][0]:#018x}-{p['key_range'][1]:#018x}",
                        "owner": p["owner"],
                        "epoch": p["epoch"],
                    }
                    for p in result["partitions"]
                ],
                # A server's workers are named by pid; a cluster's owners are its nodes, by name.
                [
                    ("id", "PARTITION"),
                    ("range", "KEY RANGE"),
                    ("owner", "OWNER NODE" if any(isinstance(p["owner"], str) for p in result["partitions"]) else "OWNER PID"),
                    ("epoch", "EPOCH"),
                ],
            )
        )
    elif args.command == "sql":
        result = client.request("POST", "/query", {"query": args.query})
        print_json(result) if args.json else print(sql_table(result))
    elif key == ("state", "get"):
        from urllib.parse import quote  # noqa: PLC0415

        result = client.get(f"/state/{quote(args.service, safe='')}/{quote(args.key, safe='')}")
        if args.json:
            print_json(result)
            return
        rows = [{"name": name, "value": value} for name, value in result["state"].items()]
        print(f"{args.service}/{args.key}")
        print(table(rows, [("name", "KEY"), ("value", "VALUE")]))


if __name__ == "__main__":
    sys.exit(main())
