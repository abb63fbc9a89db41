"""Command line, compatible with coredns: argv → config → logging → trio.run(app.serve).

Every flag of the coredns binary (-conf, -dns.port, -pidfile, -plugins, -quiet, -version) means
what it means there, with one dash as coredns spells them or two; -validate and -log.level are
k8sgw's own. A bad command line is one line on stderr and exit status 1, like any other bad input.
SIGINT and SIGTERM cancel the root nursery, so every task closes its sockets and streams on the
way out; then the query-log lines still buffered are written.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import signal
import sys
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, NoReturn

import trio

from k8sgw import __version__
from k8sgw.config import SUPPORTED_DIRECTIVES, SUPPORTED_RESOURCES, Config, load
from k8sgw.errors import ConfigError, K8sgwError, cap_echoed
from k8sgw.ops import logsink
from k8sgw.ops.logsink import LOG_FORMAT

if TYPE_CHECKING:  # the network stack is imported only when serving (see run)
    from k8sgw.app import Bound

__all__ = ["main", "parser"]

logger = logging.getLogger("k8sgw")


class _Parser(argparse.ArgumentParser):
    """argparse that treats a bad command line like any other bad input: one line, exit status 1."""

    def _get_option_tuples(self, option_string: str) -> list:
        # No prefix matching at all (allow_abbrev=False still matches single-dash prefixes in
        # Python 3.11): coredns takes none, and "-v" must not be taken for -version or -validate.
        return []

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: {cap_echoed(message)}\nRun '{self.prog} -help' for the flags.\n")


def parser() -> argparse.ArgumentParser:
    kinds = ", ".join("LoadBalancer Service" if k == "Service" else k for k in SUPPORTED_RESOURCES)
    p = _Parser(
        prog="k8sgw",
        description=f"External DNS for Kubernetes: answers the hostnames of {kinds} objects "
        "(the Python successor of CoreDNS's k8s_gateway; it reads the same Corefile).",
        epilog="Flags take one dash as coredns spells them (-conf) or two (--conf); -flag=value works too.",
        allow_abbrev=False,
        add_help=False,
    )
    p.add_argument("-h", "-help", "--help", action="help", help="show this help and exit")
    p.add_argument("-conf", "--conf", default="Corefile", metavar="FILE", help="Corefile to load (default: ./Corefile)")
    p.add_argument(
        "-dns.port", "--dns.port", "-p", dest="port", type=_port, default=53, metavar="PORT",
        help="port for server blocks that name none (default: 53)",
    )
    p.add_argument("-pidfile", "--pidfile", metavar="FILE", help="write the process ID to FILE (removed at exit)")
    p.add_argument("-plugins", "--plugins", action="store_true", help="list the supported directives and exit")
    p.add_argument(
        "-quiet", "--quiet", action="store_true", help="do not print the version and the served zones on startup"
    )
    p.add_argument("-version", "--version", action="store_true", help="print the version and exit")
    p.add_argument(
        "-validate", "--validate", action="store_true",
        help="k8sgw's own: parse the Corefile, report, and exit 0 (valid) or 1; touches no network",
    )
    p.add_argument(
        "-log.level", "--log.level", dest="log_level", default="info",
        choices=["debug", "info", "warning", "error"], help="k8sgw's own: log level (default: info)",
    )
    return p


def _port(text: str) -> int:
    if not text.isascii() or not text.isdecimal() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f'expected a port from 0 to 65535, got "{text}"')
    return int(text)


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
        trio.run(partial(run, cfg, quiet=args.quiet, pidfile=args.pidfile))
    except* (K8sgwError, OSError) as group:  # bad credentials, a port in use, a forwarding loop
        fatal.extend(leaves(group))
    finally:
        shutdown_logging()
    for exc in fatal:
        print(f"k8sgw: {exc}", file=sys.stderr)
    return 1 if fatal else 0


def leaves(group: BaseExceptionGroup) -> list[BaseException]:
    """The exceptions in a (nested) ExceptionGroup."""
    return [leaf for exc in group.exceptions for leaf in (leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])]


def setup_logging(level: str) -> None:
    """Log records to stderr as LOG_FORMAT; query-log lines through the process's LineSink on the
    same stream (batched, written off the answering path; flushed by shutdown_logging or at exit).
    When logging was configured before (an embedding program), it is left alone and query lines
    go through it."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()  # sys.stderr
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
        root.setLevel(getattr(logging, level.upper()))
        logsink.install(handler.stream, handler.lock)
    # httpx logs every request at INFO, which is every watch reconnect: too loud.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def shutdown_logging() -> None:
    """Write the query-log lines still buffered (SIGTERM, SIGINT and errors come here too)."""
    logsink.shutdown()


async def run(cfg: Config, *, quiet: bool = False, pidfile: str | None = None) -> None:
    """Serve until SIGINT or SIGTERM, then cancel everything and return.

    SIGTERM with `health { lameduck D }`: keep answering DNS for D (with /ready at 503, so load
    balancers stop sending new clients), then stop. A second signal, or SIGINT, stops at once.

    Args:
        quiet: print nothing on startup (else, as coredns: each served ZONE:PORT, then the version).
        pidfile: write the process ID there once serving; removed on the way out.
    """
    from k8sgw.app import serve  # after config: a -validate run never imports the network stack
    from k8sgw.ops.endpoints import lameduck_seconds

    draining = trio.Event()
    lameduck = lameduck_seconds(cfg)
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            bound = await nursery.start(partial(serve, cfg, draining=draining))
            if pidfile is not None:  # before the banner: whoever reads that may read the pidfile
                _write_pidfile(pidfile)
                nursery.start_soon(_remove_at_exit, pidfile)
            if not quiet:
                print(_banner(cfg, bound), flush=True)
            async for signum in signals:
                if signum == signal.SIGTERM and lameduck > 0 and not draining.is_set():
                    logger.info("SIGTERM: lameduck for %.1fs: answering DNS, /ready says 503", lameduck)
                    draining.set()
                    nursery.cancel_scope.deadline = trio.current_time() + lameduck
                    continue
                logger.info("%s: shutting down", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def _banner(cfg: Config, bound: Bound) -> str:
    """What coredns prints on startup: one ZONE:PORT line per served key, then the version."""
    ports = {port for _, port in bound.udp}
    lines = []
    for server in cfg.servers:
        for key in server.keys:
            # Port 0 (any free port) is shown as the one bound, when there is no doubt which.
            port = key.port if key.port or len(ports) != 1 else next(iter(ports))
            lines.append(f"{key.zone}:{port}")
    return "\n".join([*lines, f"k8sgw-{__version__}", f"python {platform.python_version()}"])


def _write_pidfile(path: str) -> None:
    try:
        with open(path, "w", encoding="ascii") as f:  # noqa: ASYNC230 - a few bytes, once
            f.write(f"{os.getpid()}\n")
    except OSError as exc:
        raise K8sgwError(f"-pidfile: cannot write {path}: {exc.strerror or exc}") from exc


async def _remove_at_exit(path: str) -> None:
    try:
        await trio.sleep_forever()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
