"""`k8sgw-dev`: k8sgw on an embedded default, no cluster needed.

Starts the in-repo dev API server seeded with the example manifests, writes a kubeconfig for it,
and runs k8sgw against it on 127.0.0.1:1053 for the zone foo.org, in one trio nursery. kubectl
(`--kubeconfig` the printed path) changes the answers live.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
from collections.abc import Sequence
from functools import partial
from importlib import resources
from pathlib import Path

import trio

from k8sgw.app import serve
from k8sgw.cli import setup_logging
from k8sgw.config import parse_corefile
from k8sgw.devapi.kubeconfig import write_kubeconfig
from k8sgw.devapi.server import serve_devapi
from k8sgw.devapi.store import DevCluster

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


def examples_dir() -> Path:
    return Path(str(resources.files("k8sgw") / "examples"))


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
    setup_logging(args.log_level)
    trio.run(run, args)
    return 0


async def run(args: argparse.Namespace, *, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the dev cluster and k8sgw until SIGINT/SIGTERM. started() gets app.Bound."""
    cluster = DevCluster()
    seeds = args.seed or sorted((examples_dir() / "seed").glob("*.yaml"))
    count = cluster.load_manifests(seeds)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(partial(serve_devapi, cluster, host="127.0.0.1", port=args.api_port))
        kubeconfig = write_kubeconfig(args.kubeconfig_out, url)
        text = COREFILE.format(zone=args.zone, port=args.dns_port, bind=args.bind, kubeconfig=kubeconfig)
        cfg = parse_corefile(text, filename="<embedded Corefile>")
        bound = await nursery.start(serve, cfg)
        host, port = bound.udp[0]
        example = examples_dir() / "myserviceb.yaml"
        print(
            f"dev API server {url} with {count} example objects; kubeconfig: {kubeconfig}\n"
            f"k8sgw serves {args.zone} on {host} port {port} (udp and tcp). Try:\n"
            f"  dig @{host} -p {port} myservicea.{args.zone}\n"
            f"  kubectl --kubeconfig {kubeconfig} apply -f {example}\n"
            f"  dig @{host} -p {port} myserviceb.{args.zone}\n"
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
