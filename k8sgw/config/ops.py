"""Operations directives: health, ready, prometheus, log, errors, reload.

Same syntax and defaults as the CoreDNS plugins of the same names, so a CoreDNS Corefile keeps
working. Each parser returns a frozen model that ends up in ``ServerBlock.plugins[name]``; the
servers and tasks that act on them live in ``k8sgw.ops``. Nothing here opens sockets or files.

Differences from CoreDNS, each an error rather than a silent change: ``prometheus`` options
(``tls``, ``runtime_metrics``) and ``errors`` options (``consolidate``, ``stacktrace``) are not
supported yet.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from k8sgw.config.directives import _zone
from k8sgw.config.parser import Directive
from k8sgw.config.registry import Context, count_args, directive, no_block, no_options

__all__ = [
    "COMBINED_LOG_FORMAT",
    "COMMON_LOG_FORMAT",
    "LOG_CLASSES",
    "ErrorsConfig",
    "HealthConfig",
    "LogConfig",
    "PrometheusConfig",
    "ReadyConfig",
    "ReloadConfig",
    "parse_address",
    "parse_duration",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

COMMON_LOG_FORMAT = (
    '{remote}:{port} - {>id} "{type} {class} {name} {proto} {size} {>do} {>bufsize}" '
    "{rcode} {>rflags} {rsize} {duration}"
)
"""CoreDNS's Common Log Format (``{common}``), the default of ``log``."""
COMBINED_LOG_FORMAT = COMMON_LOG_FORMAT + ' "{>opcode}"'
"""CoreDNS's ``{combined}``: the common format plus the query opcode."""

LOG_CLASSES = ("success", "denial", "error")
"""Response classes of ``log { class ... }`` (CoreDNS ``response.Class``); ``all`` = every one."""


class HealthConfig(BaseModel):
    """``health [ADDRESS] { lameduck DURATION }``: GET /health answers 200 "OK" while running."""

    model_config = _FROZEN

    host: str = ""
    """IP address or host name to listen on; ``""`` = every address (CoreDNS ``:8080``)."""
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    lameduck: Annotated[float, Field(ge=0)] = 0.0
    """Seconds to keep answering DNS after SIGTERM before stopping (0 = stop at once); /health
    stays 200 meanwhile and /ready turns 503, so load balancers drain the pod first."""
    line: int


class ReadyConfig(BaseModel):
    """``ready [ADDRESS]``: GET /ready is 503 until every enabled kind has synced, then 200."""

    model_config = _FROZEN

    host: str = ""
    port: Annotated[int, Field(ge=0, le=65535)] = 8181
    line: int


class PrometheusConfig(BaseModel):
    """``prometheus [ADDRESS]``: GET /metrics in the Prometheus text format."""

    model_config = _FROZEN

    host: str = ""
    """CoreDNS defaults to ``localhost:9153``; k8sgw listens on every address (``:9153``) so a
    Prometheus outside the pod can scrape it, which is what every k8s deployment writes anyway."""
    port: Annotated[int, Field(ge=0, le=65535)] = 9153
    line: int


class LogConfig(BaseModel):
    """``log [NAMES...] [FORMAT] { class CLASSES... }``: one INFO line per query on "k8sgw.query"."""

    model_config = _FROZEN

    names: tuple[str, ...] = (".",)
    """Log only queries for names at or below these (absolute, lower-case); ``"."`` = all."""
    format: str = COMMON_LOG_FORMAT
    """Placeholders as CoreDNS's replacer: ``{remote}``, ``{>id}``, ``{rcode}``, ..."""
    classes: frozenset[str] = frozenset(LOG_CLASSES)
    """Which responses to log: a subset of ``LOG_CLASSES`` (CoreDNS ``class``; default all)."""
    line: int


class ErrorsConfig(BaseModel):
    """``errors``: log errors met while serving (a flag)."""

    model_config = _FROZEN

    line: int


class ReloadConfig(BaseModel):
    """``reload [INTERVAL [JITTER]]``: re-read the Corefile when its contents change."""

    model_config = _FROZEN

    interval: Annotated[float, Field(ge=2)] = 30.0
    """Seconds between checks; CoreDNS's minimum is 2 s."""
    jitter: Annotated[float, Field(ge=0)] = 15.0
    """The check interval is ``interval ± jitter/2``, picked once per start so that replicas
    started together do not all reload together. At most ``interval / 2``; 0 = no jitter."""
    line: int

    def pick_interval(self, random: float) -> float:
        """The check interval for one run, given ``random`` uniform in [0, 1) (CoreDNS's rule)."""
        return self.interval + self.jitter * (random - 0.5)


# --- value syntax ------------------------------------------------------------------------------

_DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")


def parse_duration(text: str) -> float:
    """Seconds from a Go duration (``time.ParseDuration``): ``5s``, ``1m30s``, ``500ms``, ``0``.

    Negative durations are refused (no directive has a use for them).

    Raises:
        ValueError: not a Go duration.
    """
    if text == "0":
        return 0.0
    body = text[1:] if text.startswith("+") else text
    if not body:
        raise ValueError(text)
    total, pos = 0.0, 0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if m is None or m.group(1) in ("", "."):
            raise ValueError(text)
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return total


def parse_address(text: str, default_port: int) -> tuple[str, int]:
    """``(host, port)`` from a CoreDNS listen address: ``:8080``, ``127.0.0.1:8080``,
    ``[::1]:8080``, ``localhost:9153``. An empty host means every address.

    Raises:
        ValueError: with the reason.
    """
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or not text[end + 1 :].startswith(":"):
            raise ValueError("an IPv6 address is written [ADDR]:PORT")
        host, port_text = text[1:end], text[end + 2 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f'"{host}" is not an IPv6 address') from None
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            raise ValueError("missing port (write HOST:PORT, or :PORT for every address)")
        if ":" in host:
            raise ValueError("an IPv6 address is written [ADDR]:PORT")
        if host:
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                if not _HOSTNAME.fullmatch(host) or host.replace(".", "").isdigit():
                    raise ValueError(f'"{host}" is not an IP address or host name') from None
    if not port_text.isdigit() or not port_text.isascii() or int(port_text) > 65535:
        raise ValueError(f'expected a port from 0 to 65535, got "{port_text}"')
    del default_port  # the port is required in ADDRESS, as in CoreDNS (net.SplitHostPort)
    return host, int(port_text)


def _address(d: Directive, ctx: Context, default_port: int) -> dict[str, object]:
    if not d.args:
        return {}
    tok = d.args[0]
    try:
        host, port = parse_address(tok.text, default_port)
    except ValueError as exc:
        raise ctx.error(
            f'{d.name}: expected an address like ":{default_port}" or "127.0.0.1:{default_port}", '
            f'got "{tok.text}" ({exc})',
            tok.line,
        ) from None
    return {"host": host, "port": port}


def _duration(d: Directive, ctx: Context, index: int, what: str) -> float:
    tok = d.args[index]
    try:
        return parse_duration(tok.text)
    except ValueError:
        raise ctx.error(
            f'{what}: expected a duration like "5s", "500ms" or "1m30s", got "{tok.text}"', tok.line
        ) from None


def _single_option(d: Directive, ctx: Context, name: str, usage: str) -> Iterator[Directive]:
    """The lines of d's block: each must be option `name`, given at most once, without a block."""
    first: int | None = None
    for child in d.children or ():
        if child.name != name:
            raise ctx.error(f'{d.name}: unknown option "{child.name}" (expected: {usage})', child.line)
        if first is not None:
            raise ctx.error(f"{name}: given twice (first on line {first})", child.line)
        first = child.line
        no_block(child, ctx)
        yield child


# --- directives --------------------------------------------------------------------------------


@directive("health")
def _health(d: Directive, ctx: Context) -> HealthConfig:
    count_args(d, ctx, "[ADDRESS]", 0, 1)
    fields: dict[str, object] = _address(d, ctx, 8080)
    for child in _single_option(d, ctx, "lameduck", "lameduck DURATION"):
        count_args(child, ctx, "1 argument (DURATION)", 1, 1)
        fields["lameduck"] = _duration(child, ctx, 0, "lameduck")
    return HealthConfig(line=d.line, **fields)


@directive("ready")
def _ready(d: Directive, ctx: Context) -> ReadyConfig:
    count_args(d, ctx, "[ADDRESS]", 0, 1)
    no_block(d, ctx)
    return ReadyConfig(line=d.line, **_address(d, ctx, 8181))


@directive("prometheus")
def _prometheus(d: Directive, ctx: Context) -> PrometheusConfig:
    count_args(d, ctx, "[ADDRESS]", 0, 1)
    no_options(d, ctx)
    return PrometheusConfig(line=d.line, **_address(d, ctx, 9153))


@directive("errors")
def _errors(d: Directive, ctx: Context) -> ErrorsConfig:
    count_args(d, ctx, "no arguments", 0, 0)
    no_options(d, ctx)
    return ErrorsConfig(line=d.line)


@directive("reload")
def _reload(d: Directive, ctx: Context) -> ReloadConfig:
    count_args(d, ctx, "[INTERVAL [JITTER]]", 0, 2)
    no_block(d, ctx)
    interval, jitter = 30.0, 15.0
    if d.args:
        interval = _duration(d, ctx, 0, "reload")
        if interval < 2:
            raise ctx.error(f'reload: the interval must be at least 2s, got "{d.args[0].text}"', d.args[0].line)
    if len(d.args) == 2:
        jitter = _duration(d, ctx, 1, "reload")
        if 0 < jitter < 1:
            raise ctx.error(
                f'reload: the jitter must be 0 or at least 1s, got "{d.args[1].text}"', d.args[1].line
            )
    # CoreDNS caps the jitter at half the interval, silently; so do we (it is not an error there).
    return ReloadConfig(interval=interval, jitter=min(jitter, interval / 2), line=d.line)


_FORMAT_SHORTCUTS = {"{common}": COMMON_LOG_FORMAT, "{combined}": COMBINED_LOG_FORMAT}


@directive("log")
def _log(d: Directive, ctx: Context) -> LogConfig:
    args = list(d.args)
    fields: dict[str, object] = {}
    if args and "{" in args[-1].text:
        text = args.pop().text
        fields["format"] = _FORMAT_SHORTCUTS.get(text, text)
    if args:
        names = [_zone(tok.text, ctx, tok.line, what="log") for tok in args]
        fields["names"] = tuple(dict.fromkeys(names))
    for child in _single_option(d, ctx, "class", "class CLASSES..."):
        count_args(child, ctx, "one or more of: all, success, denial, error", 1, None)
        classes: set[str] = set()
        for tok in child.args:
            value = tok.text.lower()
            if value == "all":
                classes.update(LOG_CLASSES)
            elif value in LOG_CLASSES:
                classes.add(value)
            else:
                raise ctx.error(
                    f'class: expected all, success, denial or error, got "{tok.text}"', tok.line
                )
        fields["classes"] = frozenset(classes)
    return LogConfig(line=d.line, **fields)
