"""Command line, compatible with coredns: argv → config → logging → trio.run(app.serve).

Flags take one dash as coredns spells them (`-conf`, `-dns.port`) or two (`--conf`). SIGINT and
SIGTERM cancel the root nursery, so every task closes its sockets and streams on the way out.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from functools import partial

import trio

from k8sgw import __version__
from k8sgw.config import SUPPORTED_DIRECTIVES, Config, load
from k8sgw.errors import ConfigError, K8sgwError

__all__ = ["main", "parser"]

logger = logging.getLogger("k8sgw")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="k8sgw",
        description="External DNS for Kubernetes: answers Ingress and LoadBalancer Service names "
        "(the Python successor of CoreDNS's k8s_gateway).",
    )
    p.add_argument("-conf", "--conf", default="Corefile", metavar="FILE", help="Corefile to load (default: ./Corefile)")
    p.add_argument(
        "-dns.port", "--dns.port", dest="port", type=int, default=53, metavar="N",
        help="port for server blocks that name none (default: 53)",
    )
    p.add_argument("-plugins", "--plugins", action="store_true", help="list the supported directives and exit")
    p.add_argument("-version", "--version", action="store_true", help="print the version and exit")
    p.add_argument(
        "-validate", "--validate", action="store_true",
        help="parse the Corefile, report, and exit 0 (valid) or 1; touches no network",
    )
    p.add_argument(
        "-log.level", "--log.level", dest="log_level", default="info",
        choices=["debug", "info", "warning", "error"], help="log level (default: info)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["explain"]:  # a subcommand with its own flags: k8sgw/explain/cli.py
        from k8sgw.explain.cli import main as explain_main

        return explain_main(argv[1:])
    args = parser().parse_args(argv)
    if args.version:
        print(f"k8sgw-{__version__}")
        return 0
    if args.plugins:
        print("Server types:\n  dns\n\nDirectives:")
        for name in SUPPORTED_DIRECTIVES:
            print(f"  {name}")
        return 0
    try:
        cfg = load(args.conf, default_port=args.port)
    except ConfigError as exc:
        print(f"k8sgw: {exc}", file=sys.stderr)
        return 1
    if args.validate:
        blocks = ", ".join(" ".join(f"{k.zone}:{k.port}" for k in b.keys) for b in cfg.servers)
        print(f"{cfg.filename}: valid ({len(cfg.servers)} server block(s): {blocks})")
        return 0
    setup_logging(args.log_level)
    fatal: list[BaseException] = []
    try:
        trio.run(run, cfg)
    except* (K8sgwError, OSError) as group:  # bad credentials, a port in use, a forwarding loop
        fatal.extend(_leaves(group))
    for exc in fatal:
        print(f"k8sgw: {exc}", file=sys.stderr)
    return 1 if fatal else 0


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    return [leaf for exc in group.exceptions for leaf in (_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])]


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request at INFO, which is every watch reconnect: too loud.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


async def run(cfg: Config) -> None:
    """Serve until SIGINT or SIGTERM, then cancel everything and return.

    SIGTERM with `health { lameduck D }`: keep answering DNS for D (with /ready at 503, so load
    balancers stop sending new clients), then stop. A second signal, or SIGINT, stops at once.
    """
    from k8sgw.app import serve  # after config: a -validate run never imports the network stack
    from k8sgw.ops.endpoints import lameduck_seconds

    draining = trio.Event()
    lameduck = lameduck_seconds(cfg)
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            await nursery.start(partial(serve, cfg, draining=draining))
            async for signum in signals:
                if signum == signal.SIGTERM and lameduck > 0 and not draining.is_set():
                    logger.info("SIGTERM: lameduck for %.1fs: answering DNS, /ready says 503", lameduck)
                    draining.set()
                    nursery.cancel_scope.deadline = trio.current_time() + lameduck
                    continue
                logger.info("%s: shutting down", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
