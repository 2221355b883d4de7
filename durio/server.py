"""Running durio: the embedded server (services in-process) and its HTTP listeners."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import signal
import typing
from dataclasses import dataclass

import anyio
import anyio.abc
import anyio.to_thread

from durio import backend as backends
from durio.actors.runtime import Runtime, RuntimeConfig, open_runtime
from durio.addresses import parse_address
from durio.ingress.admin_app import AdminApp
from durio.ingress.ingress_app import IngressApp
from durio.ingress.limits import HttpLimits
from durio.ingress.serving import serve_http
from durio.ingress.ui import admin_routes
from durio.partitions import PartitionTable, check_partition_count
from durio.sdk.definitions import ServiceDefinition

log = logging.getLogger("durio")

DEFAULT_DATA_DIR = "./.durio"
DEFAULT_INGRESS = "127.0.0.1:8080"
DEFAULT_ADMIN = "127.0.0.1:9070"


@dataclass
class RunningServer:
    runtime: Runtime
    ingress_url: str
    admin_url: str


async def run_server(
    services: typing.Iterable[ServiceDefinition],
    *,
    data_dir: str | os.PathLike[str] = DEFAULT_DATA_DIR,
    ingress: str = DEFAULT_INGRESS,
    admin: str = DEFAULT_ADMIN,
    config: RuntimeConfig | None = None,
    http_limits: HttpLimits | None = None,
    worker: typing.Any = None,
    partitions: int | None = None,
    cluster: typing.Any = None,
    task_status: anyio.abc.TaskStatus[RunningServer] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run the runtime and both HTTP listeners (each with its own `http_limits`) until cancelled.

    `worker` (a durio.workers.worker.WorkerSpec): this process is one of several workers sharing the data
    directory and the ports; it serves its own partitions and forwards the rest to their owners.
    `cluster` (a durio.cluster.node.ClusterOptions): this process is a node of a cluster on PostgreSQL, which
    holds the truth; the data directory is its cache, and every batch is shipped before it commits."""
    if cluster is not None:
        await _run_cluster_node(services, data_dir, ingress, admin, config, http_limits, cluster, task_status)
        return
    if worker is None:
        runtime_context: typing.AsyncContextManager[Runtime] = _open_single_process_runtime(
            services, data_dir, config, partitions
        )
    else:
        from durio.workers.worker import open_worker_runtime

        runtime_context = open_worker_runtime(services, data_dir, config, worker)
    async with runtime_context as runtime:
        await _serve_http(runtime, ingress, admin, http_limits, worker, task_status)


async def _serve_http(
    runtime: Runtime,
    ingress: str,
    admin: str,
    http_limits: HttpLimits | None,
    worker: typing.Any,
    task_status: anyio.abc.TaskStatus[RunningServer],
) -> None:
    """Both HTTP listeners of one runtime, until cancelled."""
    async with anyio.create_task_group() as nursery:
        shares = getattr(worker, "connection_shares", None)
        ingress_url = await nursery.start(
            functools.partial(
                serve_http,
                IngressApp(runtime),
                ingress,
                http_limits,
                sock=getattr(worker, "ingress_socket", None),
                share=shares.share_of(worker.index) if shares is not None else None,
            )
        )
        admin_url = await nursery.start(
            functools.partial(
                serve_http,
                AdminApp(runtime, admin_routes(runtime)),
                admin,
                http_limits,
                sock=getattr(worker, "admin_socket", None),
            )
        )
        log.info("durio ingress listening on %s", ingress_url)
        log.info("durio admin listening on %s (UI at %s/ui/)", admin_url, admin_url)
        task_status.started(RunningServer(runtime, ingress_url, admin_url))


async def _run_cluster_node(
    services: typing.Iterable[ServiceDefinition],
    data_dir: str | os.PathLike[str],
    ingress: str,
    admin: str,
    config: RuntimeConfig | None,
    http_limits: HttpLimits | None,
    cluster: typing.Any,
    task_status: anyio.abc.TaskStatus[RunningServer],
) -> None:
    """A node of a cluster on PostgreSQL: one runtime after another, each serving the partitions held then.

    When the partitions this node should serve change (it takes some over, hands some to a node that joined,
    or lost some while it was cut off), its runtime stops, the local store is made to match what is held, and
    a new runtime recovers them: a crash-restart of the node's runtime, without the crash."""
    from durio.cluster.node import open_cluster_node
    from durio.ingress.cluster_admin import run_admin_request
    from durio.workers.cluster_node import ClusterPeers, RuntimeHandle, answer_peers, consume_deliveries, peer_address

    services = list(services)
    # Where the other nodes reach this one: the advertised address, else a free port on loopback (nodes on
    # one machine need nothing more; nodes on several give --advertise-url).
    host, port = peer_address(cluster.advertise_url) if cluster.advertise_url else ("127.0.0.1", 0)
    peer_listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    peer_url = cluster.advertise_url or f"http://127.0.0.1:{peer_listener.extra(anyio.abc.SocketAttribute.local_port)}"
    serving = RuntimeHandle()
    admin_for_peers = AdminApp(typing.cast(Runtime, serving))  # what another node asks about this node's partitions
    listening = False
    async with peer_listener, open_cluster_node(cluster, data_dir, peer_url) as node:
        peers = ClusterPeers(node, peer_listener)
        node_config = dataclasses.replace(config or RuntimeConfig(), durability=node.durability)
        async with anyio.create_task_group() as tasks:
            await tasks.start(peers.run)
            while True:
                held = await node.settle()
                if not held:
                    log.info("node %s holds no partition yet: it waits for its share", node.name)
                    await node.changed.wait()
                    continue
                table = PartitionTable(node.durability.partitions, frozenset(held))
                async with anyio.create_task_group() as generation:
                    async with open_runtime(services, data_dir, node_config, table, peers) as runtime:
                        answer_peers(peers, runtime, node)
                        peers.requests["admin_request"] = functools.partial(run_admin_request, admin_for_peers)
                        peers.answering = generation
                        peers.ready.set()
                        generation.start_soon(consume_deliveries, node, runtime)
                        serving.serve(runtime)
                        if not listening:  # the listeners outlive this runtime: they serve the next ones too
                            running = await tasks.start(
                                functools.partial(_serve_http, typing.cast(Runtime, serving), ingress, admin, http_limits, None)
                            )
                            task_status.started(running)
                            listening = True
                        await node.changed.wait()
                        serving.stop()
                        peers.ready = anyio.Event()  # peers' requests wait for the next runtime
                        peers.answering = None
                        generation.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def _open_single_process_runtime(
    services: typing.Iterable[ServiceDefinition],
    data_dir: str | os.PathLike[str],
    config: RuntimeConfig | None,
    partitions: int | None,
) -> typing.AsyncIterator[Runtime]:
    """One process owns every partition of the data directory (whose number it records when it is new)."""
    from durio.workers.ownership import record_partition_count, take_epochs

    count = await anyio.to_thread.run_sync(record_partition_count, os.fspath(data_dir), partitions)
    table = PartitionTable.single(count)
    async with open_runtime(services, data_dir, config, table) as runtime:
        await runtime.write(take_epochs(table.owned))
        yield runtime


async def run_until_signalled(
    services: typing.Iterable[ServiceDefinition], backend_name: str = backends.DEFAULT_BACKEND, **options: typing.Any
) -> None:
    """Run the server; SIGINT or SIGTERM shut it down cleanly. `backend_name` is what it runs on, for the log."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as nursery:
            log.info("durio runs on %s", backend_name)
            await nursery.start(lambda task_status: run_server(services, task_status=task_status, **options))

            async def stop_on_signal() -> None:
                async for signum in signals:
                    log.info("received %s, shutting down", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(stop_on_signal)


# Restate's environment variable for request-identity-private-key-pem-file, and durio's spelling of it.
IDENTITY_KEY_ENV = ("DURIO_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE", "RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE")


def load_request_identity_key(pem_file: str | None) -> typing.Any:
    """The key that signs requests to remote deployments: from `pem_file`, else the environment, else None.

    An unusable file raises durio.protocol.identity.IdentityKeyError (a ValueError) saying why."""
    pem_file = pem_file or next((os.environ[name] for name in IDENTITY_KEY_ENV if os.environ.get(name)), None)
    if not pem_file:
        return None
    from durio.protocol.identity import RequestSigner

    signer = RequestSigner.from_pem_file(pem_file)
    # As Restate does: the public key to give deployments (durio.app(..., identity_keys=[...])).
    log.info("loaded request identity key %s from %s", signer.key_id, pem_file)
    return signer


def serve(
    services: typing.Iterable[ServiceDefinition],
    data_dir: str | None = None,
    ingress: str | None = None,
    admin: str | None = None,
    config: RuntimeConfig | None = None,
    request_identity_private_key_pem_file: str | None = None,
    config_file: str | None = None,
    backend: str | None = None,
    deployment_ca_file: str | None = None,
    workers: int | str | None = None,
    partitions: int | None = None,
    cluster: str | None = None,
    node_name: str | None = None,
    cluster_lease_s: float | None = None,
    advertise_url: str | None = None,
) -> int:
    """Run durio embedded, with these services in-process, until SIGINT/SIGTERM.

    `workers`: how many worker processes serve the data directory's partitions (an int, or "auto": one per usable
    CPU; default 1, this process). With more than one, this process becomes their supervisor: it forks them (each
    starts with these services), restarts any that dies, and stops them on SIGTERM; they share the ports.
    `partitions`: how many partitions a new data directory gets (default 24; an existing one keeps its own).
    The exit status: 0, or 1 when a worker could not run.

    `cluster` (a postgresql:// URL, else DURIO_CLUSTER): run as node `node_name` (else DURIO_NODE_NAME, else the
    host name) of a cluster on that PostgreSQL, which holds the truth; leases last `cluster_lease_s` (default 10 s).
    The other nodes reach this one at `advertise_url` (else DURIO_ADVERTISE_URL), where it listens for them;
    without one it listens on a free port of 127.0.0.1 (enough for nodes on one machine). One worker per node (`workers` is then 1). A bad option is a ClusterOptionError.

    `backend` is the event loop: "trio" (the default), "asyncio" or "uvloop" (the extra durio[uvloop]),
    else DURIO_BACKEND names it; a bad one is a durio.backend.BackendError (a ValueError) before anything
    starts. Handlers run on that loop: those that use asyncio libraries need "asyncio" or "uvloop".

    Server defaults (retry policy, inactivity and abort timeouts, retentions) are read from Restate's own
    configuration: the TOML `config_file` (else the file DURIO_CONFIG_FILE or RESTATE_CONFIG names) and
    RESTATE_*/DURIO_* variables (durio.config); they apply over `config`. A bad value raises
    durio.config.ConfigError (a ValueError) before anything starts; an unsupported option is a warning.

    Requests to remote deployments are signed with the Ed25519 key in `request_identity_private_key_pem_file`
    (or in the file RESTATE_REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE names), as Restate signs them. An https://
    deployment's certificate is verified against the system's CAs and those of `deployment_ca_file` (else
    the file DURIO_DEPLOYMENT_CA_FILE names); one that cannot be read is a ValueError before anything starts.

    `ingress` and `admin` are `HOST:PORT`, `:PORT` (loopback) or `[IPv6]:PORT`; a bad one is an
    AddressError (a ValueError) before anything starts. What clients may hold of each listener
    (body timeout, connections, buffered bodies) is read from DURIO_HTTP_* (durio.ingress.limits).
    """
    from durio.config import load_settings

    backend_name = backends.choose_backend(backend)
    settings = load_settings(config_file)
    for warning in settings.warnings:
        log.warning("%s", warning)
    config = settings.apply(config or RuntimeConfig())
    signer = load_request_identity_key(request_identity_private_key_pem_file or settings.request_identity_private_key_pem_file)
    if signer is not None:
        config = dataclasses.replace(config or RuntimeConfig(), request_identity_key=signer)
    ca_file = deployment_ca_file or os.environ.get("DURIO_DEPLOYMENT_CA_FILE") or None
    if ca_file is not None:
        check_ca_file(ca_file)
        config = dataclasses.replace(config, deployment_ca_file=ca_file)
    options = {
        "data_dir": data_dir or os.environ.get("DURIO_DATA_DIR") or DEFAULT_DATA_DIR,
        "ingress": _listen_address("ingress", ingress, "DURIO_INGRESS", DEFAULT_INGRESS),
        "admin": _listen_address("admin", admin, "DURIO_ADMIN", DEFAULT_ADMIN),
        "config": config,
        "http_limits": HttpLimits.from_env(),
    }
    worker_count = resolve_workers(workers if workers is not None else 1)
    if partitions is not None:
        check_partition_count(partitions)
    cluster = cluster or os.environ.get("DURIO_CLUSTER") or None
    if cluster is not None:
        options["cluster"] = cluster_options(cluster, node_name, cluster_lease_s, partitions, advertise_url)
        if worker_count > 1:
            log.info("a cluster node runs one worker for now: %d workers were asked for, 1 runs", worker_count)
            worker_count = 1
    services = list(services)
    if worker_count == 1:
        with contextlib.suppress(KeyboardInterrupt):
            backends.run(
                lambda: run_until_signalled(services, backend_name, partitions=partitions, **options), backend=backend_name
            )
        return 0
    return _supervise(services, worker_count, partitions, backend_name, options)


def resolve_workers(workers: int | str) -> int:
    """An int, or "auto" (one per usable CPU); a WorkerCountError (a ValueError) otherwise."""
    from durio.workers.supervisor import usable_cpus

    if workers == "auto":
        return usable_cpus()
    try:
        count = int(workers)
    except (TypeError, ValueError):
        raise WorkerCountError(f"workers is a number or 'auto', not {workers!r}") from None
    if not 1 <= count <= 256:
        raise WorkerCountError(f"workers must be between 1 and 256, not {count}")
    return count


class ClusterOptionError(ValueError):
    """A cluster option (URL, node name, lease) that cannot be used."""


def cluster_options(
    url: str, node_name: str | None, lease_s: float | None, partitions: int | None, advertise_url: str | None = None
) -> typing.Any:
    from durio.cluster.node import DEFAULT_LEASE_S, ClusterOptions, default_node_name
    from durio.workers.cluster_node import peer_address

    name = node_name or os.environ.get("DURIO_NODE_NAME") or default_node_name()
    advertise = advertise_url or os.environ.get("DURIO_ADVERTISE_URL") or None
    try:
        if advertise is not None:
            peer_address(advertise)
        return ClusterOptions(url, name, DEFAULT_LEASE_S if lease_s is None else lease_s, partitions, advertise)
    except ValueError as exc:
        raise ClusterOptionError(str(exc)) from None


class WorkerCountError(ValueError):
    """A number of workers that cannot be used."""


def _supervise(
    services: list[ServiceDefinition], count: int, partitions: int | None, backend_name: str, options: dict[str, typing.Any]
) -> int:
    from durio.workers.balance import ConnectionShares
    from durio.workers.supervisor import EXIT_FATAL, Supervisor, listen_for_workers
    from durio.workers.worker import WorkerSpec

    listening = {}
    for name in ("ingress", "admin"):
        address, listening[name] = listen_for_workers(parse_address(options[name], name))
        options[name] = str(address)
    shares = ConnectionShares(count)
    log.info("durio runs %d workers on %s (pid %d supervises them)", count, backend_name, os.getpid())

    def run_worker(index: int) -> int:
        worker = WorkerSpec(index, count, partitions, listening["ingress"], listening["admin"], shares)
        try:
            backends.run(lambda: run_until_signalled(services, backend_name, worker=worker, **options), backend=backend_name)
        except KeyboardInterrupt:
            pass
        except OSError as exc:
            log.error("worker %d cannot serve: %s", index, exc)
            return EXIT_FATAL
        except BaseExceptionGroup as group:
            if group.split(OSError)[1] is None:  # nothing but OSErrors: a port or file it cannot use
                log.error("worker %d cannot serve: %s", index, group.exceptions[0])
                return EXIT_FATAL
            raise
        return 0

    try:
        return Supervisor(count, run_worker, on_reaped=shares.mark_down).run()
    finally:
        for sock in listening.values():
            sock.close()


class CaFileError(ValueError):
    """The CA file for https:// deployments cannot be used."""


def check_ca_file(path: str) -> None:
    import ssl

    try:
        ssl.create_default_context().load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise CaFileError(f"the deployment CA file {path!r} cannot be used: {exc}") from None


def _listen_address(name: str, value: str | None, variable: str, default: str) -> str:
    """The argument, else the environment variable, else the default; checked and normalised."""
    if value:
        return str(parse_address(value, name))
    if os.environ.get(variable):
        return str(parse_address(os.environ[variable], variable))
    return default


def app(
    services: typing.Iterable[ServiceDefinition],
    protocol: typing.Literal["bidi", "request_response"] | None = None,
    identity_keys: list[str] | None = None,
    journal_value_codec: typing.Any = None,
) -> typing.Any:
    """An ASGI app serving these services as a remote deployment (Restate's service protocol).

    The official SDK's `restate.app` arguments. `identity_keys`: the public keys (`publickeyv1_...`, as
    the Restate server logs its `request-identity-private-key-pem-file`'s at start) whose signature a
    request must carry; without them the app runs any request from anyone who can reach it. `protocol`:
    the mode the manifest announces; by default, as the official SDK does, bidirectional streaming when
    discovery came over HTTP/2 and request/response over HTTP/1.1. A `journal_value_codec` (a JournalValueCodec, or an async provider of one)
    encodes every value the deployment sends and decodes what it receives (durio.protocol.value_codec),
    so the server stores only encoded values; an ingress client needs the same codec.
    """
    from durio.protocol.endpoint import EndpointApp

    if protocol not in (None, "bidi", "request_response"):
        raise ValueError(f"protocol is 'bidi' or 'request_response', not {protocol!r}")
    return EndpointApp(list(services), identity_keys, journal_value_codec, protocol)


def services_of(app: typing.Any) -> list[ServiceDefinition]:
    """The services behind what `app()` (or `Endpoint.app()`) returned, or of a service or list of services.

    So that a file written for the official SDK, which only defines `app = restate.app([...])`, can be
    served (`durio serve file.py`) and tested (the harness) by durio in-process."""
    from durio.protocol.endpoint import EndpointApp
    from durio.sdk.definitions import Service, VirtualObject, Workflow

    if isinstance(app, EndpointApp):
        if app.journal_value_codec is not None:
            # Embedded, values are stored as the handlers make them: the codec would silently not apply.
            raise TypeError(
                "this app has a journal_value_codec, which applies only when it is served as a deployment "
                "(hypercorn, registered with a server): durio cannot run its services embedded"
            )
        return list(app.services.values())
    if isinstance(app, (Service, VirtualObject, Workflow)):
        return [app]
    if isinstance(app, typing.Iterable) and not isinstance(app, (str, bytes)):
        services = list(app)
        for service in services:
            if not isinstance(service, (Service, VirtualObject, Workflow)):
                raise TypeError(f"{service!r} is not a durio Service, VirtualObject or Workflow")
        return services
    raise TypeError(f"{app!r} is neither durio.app([...]) nor a list of services")
