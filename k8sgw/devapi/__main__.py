"""CLI: `python -m k8sgw.devapi [--listen HOST:PORT] [--seed PATH ...] [--kubeconfig-out PATH] [--token T]`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

import trio

from .kubeconfig import write_kubeconfig
from .server import serve_devapi
from .store import DevCluster


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m k8sgw.devapi", description="in-memory Kubernetes API server"
    )
    parser.add_argument("--listen", default="127.0.0.1:6443", help="HOST:PORT (port 0 picks a free port)")
    parser.add_argument(
        "--seed", action="append", default=[], type=Path, help="YAML file or directory to load"
    )
    parser.add_argument("--kubeconfig-out", type=Path, default=Path("k8sgw-dev.kubeconfig"))
    parser.add_argument("--token", help="require this bearer token (kubectl sends it only over https)")
    parser.add_argument("--certfile", help="serve https with this certificate (PEM)")
    parser.add_argument("--keyfile", help="private key for --certfile")
    parser.add_argument("--cafile", help="CA to put in the kubeconfig (default: --certfile)")
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> None:
    host, _, port = args.listen.rpartition(":")
    cluster = DevCluster()
    count = cluster.load_manifests(args.seed)
    ca_file = args.cafile or args.certfile
    ca_pem = Path(ca_file).read_bytes() if ca_file else None  # noqa: ASYNC240 - once, before serving
    async with trio.open_nursery() as nursery:
        url = await nursery.start(
            lambda task_status: serve_devapi(
                cluster,
                host=host.strip("[]") or "127.0.0.1",
                port=int(port),
                token=args.token,
                certfile=args.certfile,
                keyfile=args.keyfile,
                task_status=task_status,
            )
        )
        kubeconfig = write_kubeconfig(args.kubeconfig_out, url, token=args.token, ca_pem=ca_pem)
        print(f"dev API server: {url} ({count} objects seeded)", flush=True)
        print(
            f"kubeconfig: {kubeconfig.resolve()}  (kubectl --kubeconfig {kubeconfig} get ingress -A)",
            flush=True,
        )
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:  # Ctrl-C or SIGTERM: stop serving, exit 0
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        trio.run(_run, args)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
