"""`k8sgw-dev`: k8sgw on an embedded default, no cluster needed.

Starts the in-repo dev API server seeded with the example manifests, writes a kubeconfig for it,
and runs k8sgw against it on 127.0.0.1:1053 for the zone foo.org, in one trio nursery. kubectl
(`--kubeconfig` the printed path) changes the answers live. With another --zone, the examples are
rewritten for it (beside the kubeconfig), so they answer there too.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence
from functools import partial
from importlib import resources
from pathlib import Path

import trio

from k8sgw.app import serve
from k8sgw.cli import leaves, setup_logging
from k8sgw.config import parse_corefile
from k8sgw.devapi.kubeconfig import write_kubeconfig
from k8sgw.devapi.server import serve_devapi
from k8sgw.devapi.store import DevCluster
from k8sgw.errors import ConfigError, K8sgwError
from k8sgw.ops.http import listen_error

__all__ = ["COREFILE", "main"]

logger = logging.getLogger("k8sgw")

COREFILE = """\
# The embedded default: k8s_gateway for {zone}, answering from the dev API server, with the
# reverse zones of the examples' documentation prefixes (192.0.2.0/24, 2001:db8::/32) and Nodes.
{zone}:{port} 2.0.192.in-addr.arpa:{port} 8.b.d.0.1.0.0.2.ip6.arpa:{port} {{
    bind {bind}
    k8s_gateway {zone} 2.0.192.in-addr.arpa 8.b.d.0.1.0.0.2.ip6.arpa {{
        kubeconfig {kubeconfig}
        resources HTTPRoute TLSRoute GRPCRoute TCPRoute UDPRoute Ingress Service DNSEndpoint Node
    }}
}}
"""


EXAMPLES_ZONE = "foo.org"
"""The zone the bundled examples are written for."""


def examples_dir() -> Path:
    return Path(str(resources.files("k8sgw") / "examples"))


def examples_for(zone: str, out: Path) -> Path:
    """The example manifests for `zone`: the bundled ones, or copies under `out` with their names
    moved from foo.org into `zone`."""
    zone = zone.rstrip(".").lower()
    if zone == EXAMPLES_ZONE:
        return examples_dir()
    for source in examples_dir().rglob("*.yaml"):
        target = out / source.relative_to(examples_dir())
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text().replace(EXAMPLES_ZONE, zone))
    return out


def check_free(host: str, port: int) -> None:
    """Raise ListenError when host:port is taken for UDP or TCP (port 0 is always free)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind, proto in ((socket.SOCK_STREAM, "tcp"), (socket.SOCK_DGRAM, "udp")):
        with socket.socket(family, kind) as probe:
            if kind == socket.SOCK_STREAM:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise listen_error(exc, proto, host, port) from exc


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="k8sgw-dev", description=__doc__.split("\n\n")[0])
    p.add_argument("--zone", default="foo.org", help="zone to serve (default: foo.org)")
    p.add_argument("--bind", default="127.0.0.1", help="DNS listen address (default: 127.0.0.1)")
    p.add_argument("--dns-port", type=int, default=1053, help="DNS port (default: 1053)")
    p.add_argument("--api-port", type=int, default=0, help="dev API server port (default: any free port)")
    p.add_argument(
        "--kubeconfig-out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "k8sgw-dev" / "kubeconfig",
        help="where to write the dev cluster's kubeconfig (default: %(default)s)",
    )
    p.add_argument("--seed", type=Path, action="append", help="manifests to load (default: the bundled examples)")
    p.add_argument("--log.level", dest="log_level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Before anything is written: a second k8sgw-dev must not overwrite the first one's kubeconfig.
    try:
        check_free(args.bind, args.dns_port)
        if args.api_port:
            check_free("127.0.0.1", args.api_port)
    except OSError as exc:
        print(f"k8sgw-dev: {exc} (is another k8sgw-dev running? --dns-port 0 picks a free port)", file=sys.stderr)
        return 1
    setup_logging(args.log_level)
    fatal: list[BaseException] = []
    try:
        trio.run(run, args)
    except* (K8sgwError, OSError) as group:
        fatal.extend(leaves(group))
    for exc in fatal:
        print(f"k8sgw-dev: {exc}", file=sys.stderr)
    return 1 if fatal else 0


async def run(args: argparse.Namespace, *, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the dev cluster and k8sgw until SIGINT/SIGTERM. started() gets app.Bound."""
    cluster = DevCluster()
    examples = examples_for(args.zone, args.kubeconfig_out.parent / "examples")
    seeds = args.seed or sorted((examples / "seed").glob("*.yaml"))
    count = cluster.load_manifests(seeds)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(partial(serve_devapi, cluster, host="127.0.0.1", port=args.api_port))
        kubeconfig = write_kubeconfig(args.kubeconfig_out, url)
        text = COREFILE.format(zone=args.zone, port=args.dns_port, bind=args.bind, kubeconfig=kubeconfig)
        try:
            cfg = parse_corefile(text, filename="<embedded Corefile>")
        except ConfigError as exc:  # a --zone or --bind that is not one
            raise ConfigError(f"--zone {args.zone} --bind {args.bind}: {exc.message}") from exc
        bound = await nursery.start(serve, cfg)
        host, port = bound.udp[0]
        # What is serving: with --dns-port 0, the port the kernel chose.
        text = COREFILE.format(zone=args.zone, port=port, bind=args.bind, kubeconfig=kubeconfig)
        example = examples / "myserviceb.yaml"
        print(
            f"dev API server {url} with {count} example objects; kubeconfig: {kubeconfig}\n"
            f"k8sgw serves {args.zone} on {host} port {port} (udp and tcp). Try:\n"
            f"  dig @{host} -p {port} myservicea.{args.zone.rstrip('.')}\n"
            f"  kubectl --kubeconfig {kubeconfig} apply -f {example}\n"
            f"  dig @{host} -p {port} myserviceb.{args.zone.rstrip('.')}\n"
            f"Corefile in use:\n{text}",
            flush=True,
        )
        task_status.started(bound)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                logger.info("shutting down")
                nursery.cancel_scope.cancel()
                break


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
