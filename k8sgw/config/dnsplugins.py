"""DNS behaviour directives beyond k8s_gateway: forward, cache, loadbalance, loop.

Same syntax as CoreDNS's plugins of these names, for the options k8sgw implements; any other
option is an error naming it, never silently skipped.
"""

from __future__ import annotations

import ipaddress
import os
import re

import dns.exception
import dns.name
from pydantic import BaseModel, ConfigDict, Field

from k8sgw.config.parser import Directive
from k8sgw.config.registry import Context, count_args, directive, no_block, no_options

__all__ = ["CacheConfig", "ForwardConfig", "LoadbalanceConfig", "LoopConfig", "Upstream"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

# CoreDNS forward: "The number of upstreams is limited to 15."
MAX_UPSTREAMS = 15
_POLICIES = ("random", "round_robin", "sequential")
_INT = re.compile(r"[0-9]+")


class Upstream(BaseModel):
    model_config = _FROZEN
    host: str
    port: int = 53


class ForwardConfig(BaseModel):
    """`forward FROM TO... { ... }`."""

    model_config = _FROZEN
    zone: str
    """FROM: names at or below it are forwarded (absolute, lower-case)."""
    upstreams: tuple[Upstream, ...]
    excepts: tuple[str, ...] = ()
    """`except ZONES...`: names below these are not forwarded."""
    force_tcp: bool = False
    prefer_udp: bool = False
    policy: str = "random"
    max_fails: int = 2
    """Consecutive failures after which an upstream is tried last (CoreDNS default 2; 0 = never)."""
    max_concurrent: int = 0
    """Forwarded queries in flight at most; beyond it REFUSED (CoreDNS); 0 = no bound."""
    line: int


class CacheConfig(BaseModel):
    """`cache [TTL] [ZONES...]`: caches forwarded answers."""

    model_config = _FROZEN
    max_ttl: int = Field(3600, ge=0)
    """Cap on how long an answer is kept (CoreDNS default 3600 s for success)."""
    zones: tuple[str, ...] = ()
    """Only names in these zones are cached; () = all."""
    capacity: int = 9984
    """Entries kept at most, least recently used dropped first (CoreDNS's default size)."""


class LoadbalanceConfig(BaseModel):
    """`loadbalance [round_robin]`: shuffle the order of A and AAAA records in answers."""

    model_config = _FROZEN
    policy: str = "round_robin"


class LoopConfig(BaseModel):
    """`loop`: detect a forwarding loop at start and stop with an error (CoreDNS `loop`)."""

    model_config = _FROZEN


def _zone(text: str, ctx: Context, line: int, what: str) -> str:
    try:
        return dns.name.from_text(text).canonicalize().to_text()
    except (dns.exception.DNSException, UnicodeError):
        raise ctx.error(f'{what}: expected a zone like "example.com" or ".", got "{text}"', line) from None


def _upstream(text: str, ctx: Context, line: int) -> list[Upstream]:
    """IP[:port], [IPv6]:port, dns://..., or a resolv.conf path."""
    raw = text
    if text.lower().startswith("dns://"):
        text = text[len("dns://") :]
    elif "://" in text:
        raise ctx.error(f'forward: only plain DNS upstreams are supported, got "{raw}"', line)
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not _INT.fullmatch(rest[1:]):
                raise ctx.error(f'forward: expected [IPv6]:PORT, got "{raw}"', line)
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        if not _INT.fullmatch(port_text):
            raise ctx.error(f'forward: expected IP:PORT, got "{raw}"', line)
        port = int(port_text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return _resolv_conf(raw, ctx, line)
    if not 1 <= port <= 65535:
        raise ctx.error(f'forward: port must be from 1 to 65535, got "{raw}"', line)
    return [Upstream(host=str(address), port=port)]


def _resolv_conf(path_text: str, ctx: Context, line: int) -> list[Upstream]:
    path = os.path.join(ctx.base_dir, path_text)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise ctx.error(
            f'forward: "{path_text}" is neither an IP address nor a readable resolv.conf ({exc.strerror})', line
        ) from None
    out = []
    for entry in lines:
        words = entry.split("#")[0].split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                out.append(Upstream(host=str(ipaddress.ip_address(words[1].split("%")[0]))))
            except ValueError:
                continue
    if not out:
        raise ctx.error(f'forward: "{path_text}" has no nameserver lines', line)
    return out


@directive("forward")
def parse_forward(d: Directive, ctx: Context) -> ForwardConfig:
    count_args(d, ctx, "FROM TO... (a zone, then upstream addresses or a resolv.conf)", 2, None)
    zone = _zone(d.args[0].text, ctx, d.args[0].line, "forward")
    upstreams: list[Upstream] = []
    for tok in d.args[1:]:
        upstreams.extend(_upstream(tok.text, ctx, tok.line))
    if len(upstreams) > MAX_UPSTREAMS:
        raise ctx.error(f"forward: at most {MAX_UPSTREAMS} upstreams, got {len(upstreams)}", d.line)
    options: dict = {}
    seen: dict[str, int] = {}
    for child in d.children or ():
        if child.name in seen:
            raise ctx.error(f"{child.name}: given twice (first on line {seen[child.name]})", child.line)
        seen[child.name] = child.line
        no_block(child, ctx)
        if child.name == "except":
            count_args(child, ctx, "one or more zones", 1, None)
            options["excepts"] = tuple(_zone(t.text, ctx, t.line, "except") for t in child.args)
        elif child.name in ("force_tcp", "prefer_udp"):
            count_args(child, ctx, "no arguments", 0, 0)
            options[child.name] = True
        elif child.name == "policy":
            count_args(child, ctx, "one of " + ", ".join(_POLICIES), 1, 1)
            if child.args[0].text not in _POLICIES:
                raise ctx.error(
                    f'policy: expected one of {", ".join(_POLICIES)}, got "{child.args[0].text}"', child.line
                )
            options["policy"] = child.args[0].text
        elif child.name in ("max_fails", "max_concurrent"):
            count_args(child, ctx, "a non-negative integer", 1, 1)
            if not _INT.fullmatch(child.args[0].text):
                raise ctx.error(
                    f'{child.name}: expected a non-negative integer, got "{child.args[0].text}"', child.line
                )
            options[child.name] = int(child.args[0].text)
        else:
            raise ctx.error(
                f'forward: option "{child.name}" is not supported by k8sgw (supported: except, '
                "force_tcp, prefer_udp, policy, max_fails, max_concurrent)",
                child.line,
            )
    if options.get("force_tcp") and options.get("prefer_udp"):
        raise ctx.error("forward: force_tcp and prefer_udp exclude each other", d.line)
    return ForwardConfig(zone=zone, upstreams=tuple(upstreams), line=d.line, **options)


@directive("cache")
def parse_cache(d: Directive, ctx: Context) -> CacheConfig:
    no_options(d, ctx, "only `cache [TTL] [ZONES...]`")
    args = list(d.args)
    options: dict = {}
    if args and _INT.fullmatch(args[0].text):
        options["max_ttl"] = int(args.pop(0).text)
    if args:
        options["zones"] = tuple(_zone(t.text, ctx, t.line, "cache") for t in args)
    return CacheConfig(**options)


@directive("loadbalance")
def parse_loadbalance(d: Directive, ctx: Context) -> LoadbalanceConfig:
    no_block(d, ctx)
    count_args(d, ctx, "nothing or round_robin", 0, 1)
    if d.args and d.args[0].text != "round_robin":
        raise ctx.error(f'loadbalance: only round_robin is supported, got "{d.args[0].text}"', d.line)
    return LoadbalanceConfig()


@directive("loop")
def parse_loop(d: Directive, ctx: Context) -> LoopConfig:
    no_block(d, ctx)
    count_args(d, ctx, "no arguments", 0, 0)
    return LoopConfig()
