"""Zone transfer directives: `transfer` (who may AXFR/IXFR, whom to NOTIFY) and `tsig` (keys, and
which queries must be signed).

The syntax is CoreDNS's transfer and tsig plugins', so a Corefile moves over unchanged:

    transfer [ZONES...] {
        to ADDRESS...              # CIDR, IP, IP:port or [IPv6]:port; may repeat; * = any client
        journal VERSIONS [BYTES]   # k8sgw's own: the IXFR journal's bounds
    }
    tsig [ZONES...] {
        secret NAME BASE64         # may repeat
        secrets FILE               # BIND key statements
        require [QTYPES...]        # all, none or type names; without a require line: none
    }

As in CoreDNS, NOTIFY goes to every `to` entry that names one host (an IP or IP:port, port 53 by
default), and a key with no algorithm accepts the one its client signs with. A key from a secrets
file that names its algorithm must be used with that algorithm (RFC 8945 §4.2: a key is a name
and an algorithm).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from typing import Any

import dns.exception
import dns.name
import dns.rdatatype
import dns.tsig
from pydantic import BaseModel, ConfigDict, Field

from k8sgw.config.parser import Directive
from k8sgw.config.registry import Context, count_args, directive, no_block
from k8sgw.errors import ConfigError

__all__ = ["TransferConfig", "TsigConfig", "TsigSecret", "check_zones"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

ALGORITHMS = {
    str(a).rstrip(".").lower(): str(a)
    for a in (dns.tsig.HMAC_SHA1, dns.tsig.HMAC_SHA224, dns.tsig.HMAC_SHA256, dns.tsig.HMAC_SHA384, dns.tsig.HMAC_SHA512)
}
_SIZE = re.compile(r"([0-9]+)([KMG]?)", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}


class TransferConfig(BaseModel):
    """`transfer`: AXFR/IXFR to the listed clients, NOTIFY to the listed hosts."""

    model_config = _FROZEN
    zones: tuple[str, ...] = ()
    """Absolute, lower-case; () = every zone of the block's k8s_gateway."""
    to: tuple[str, ...]
    """Normalised entries: "*", "10.0.0.0/8", "192.0.2.1", "192.0.2.1:5353", "[2001:db8::1]:53"."""
    journal_versions: int = Field(1000, ge=0)
    journal_bytes: int = Field(16 * 2**20, ge=0)
    line: int

    def permits(self, ip: str) -> bool:
        """The client at ip may transfer (its port does not matter)."""
        try:
            address = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        for entry in self.to:
            if entry == "*":
                return True
            host, _ = _split(entry)
            if address in ipaddress.ip_network(host, strict=False):
                return True
        return False

    def notify_targets(self) -> tuple[tuple[str, int], ...]:
        """Every entry that names one host, as (ip, port), in order, each once."""
        out: dict[tuple[str, int], None] = {}
        for entry in self.to:
            if entry == "*":
                continue
            host, port = _split(entry)
            network = ipaddress.ip_network(host, strict=False)
            if network.num_addresses == 1:
                out[(str(network.network_address), port)] = None
        return tuple(out)


class TsigSecret(BaseModel):
    model_config = _FROZEN
    name: str
    """The key's name, absolute, lower-case."""
    secret: str
    """Base64."""
    algorithm: str | None = None
    """dnspython's text form ("hmac-sha256."); None: the client's algorithm is accepted."""


class TsigConfig(BaseModel):
    """`tsig`: the keys queries may be signed with, and which queries must be."""

    model_config = _FROZEN
    zones: tuple[str, ...] = ()
    secrets: tuple[TsigSecret, ...]
    require_all: bool = False
    require: tuple[int, ...] = ()
    """Query types that must be signed (rdtype numbers)."""
    line: int

    def requires(self, rdtype: int) -> bool:
        return self.require_all or rdtype in self.require


def _split(entry: str) -> tuple[str, int]:
    """A normalised `to` entry as (address or network, port)."""
    if entry.startswith("["):
        host, _, port = entry[1:].partition("]:")
        return host, int(port)
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return host, int(port)
    return entry, 53


def _zones(d: Directive, ctx: Context) -> tuple[str, ...]:
    zones = []
    for token in d.args:
        try:
            zones.append(dns.name.from_text(token.text).canonicalize().to_text())
        except (dns.exception.DNSException, UnicodeError):
            raise ctx.error(f'{d.name}: expected a zone like "example.com", got "{token.text}"', token.line) from None
    return tuple(zones)


def _address(text: str, ctx: Context, line: int) -> str:
    """One `to` entry, normalised; an error names what was expected."""
    if text == "*":
        return text
    expected = f'transfer: to: expected "*", an IP, IP:port, [IPv6]:port or a CIDR, got "{text}"'
    try:
        if "/" in text:
            return str(ipaddress.ip_network(text, strict=False))
        if text.startswith("["):
            host, sep, port = text[1:].partition("]:")
            if not sep:
                raise ValueError
            return f"[{ipaddress.IPv6Address(host)}]:{_port(port)}"
        if text.count(":") == 1:
            host, port = text.split(":")
            return f"{ipaddress.IPv4Address(host)}:{_port(port)}"
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ctx.error(expected, line) from None


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError
    return port


@directive("transfer")
def parse_transfer(d: Directive, ctx: Context) -> TransferConfig:
    fields: dict[str, Any] = {"zones": _zones(d, ctx)}
    to: list[str] = []
    for child in d.children or ():
        no_block(child, ctx)
        if child.name == "to":
            count_args(child, ctx, "ADDRESS...", 1, None)
            to.extend(a for a in (_address(t.text, ctx, t.line) for t in child.args) if a not in to)
        elif child.name == "journal":
            count_args(child, ctx, "VERSIONS [BYTES]", 1, 2)
            fields["journal_versions"] = _size(child.args[0].text, ctx, child.line, "VERSIONS", units=False)
            if len(child.args) > 1:
                fields["journal_bytes"] = _size(child.args[1].text, ctx, child.line, "BYTES", units=True)
        else:
            raise ctx.error(f'transfer: unknown option "{child.name}" (expected: to, journal)', child.line)
    if not to:
        raise ctx.error("transfer: expected at least one `to ADDRESS...` line in its block", d.line)
    return TransferConfig(to=tuple(to), line=d.line, **fields)


def _size(text: str, ctx: Context, line: int, what: str, *, units: bool) -> int:
    match = _SIZE.fullmatch(text)
    if match is None or (match.group(2) and not units):
        suffix = " with an optional K, M or G suffix" if units else ""
        raise ctx.error(f'journal: {what}: expected a whole number{suffix}, got "{text}"', line)
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


@directive("tsig")
def parse_tsig(d: Directive, ctx: Context) -> TsigConfig:
    zones = _zones(d, ctx)
    secrets: list[TsigSecret] = []
    require: list[int] = []
    require_all = False
    for child in d.children or ():
        no_block(child, ctx)
        if child.name == "secret":
            count_args(child, ctx, "NAME BASE64", 2, 2)
            secrets.append(_secret(child.args[0].text, child.args[1].text, None, ctx.error, child.line))
        elif child.name == "secrets":
            count_args(child, ctx, "FILE", 1, 1)
            secrets.extend(_secrets_file(child.args[0].text, ctx, child.line))
        elif child.name == "require":
            words = [t.text for t in child.args]
            if not words or [w.lower() for w in words] == ["all"]:
                require_all = True  # CoreDNS: `require` alone means all
            elif [w.lower() for w in words] != ["none"]:
                for token in child.args:
                    try:
                        require.append(dns.rdatatype.from_text(token.text.upper()))
                    except dns.rdatatype.UnknownRdatatype:
                        raise ctx.error(
                            f'tsig: require: expected all, none or query types, got "{token.text}"', token.line
                        ) from None
        else:
            raise ctx.error(f'tsig: unknown option "{child.name}" (expected: secret, secrets, require)', child.line)
    if not secrets:
        raise ctx.error("tsig: expected at least one `secret NAME BASE64` or `secrets FILE`", d.line)
    first: dict[str, int] = {}
    for i, secret in enumerate(secrets):
        if secret.name in first:
            raise ctx.error(f"tsig: key {secret.name} is defined twice", d.line)
        first[secret.name] = i
    return TsigConfig(
        zones=zones, secrets=tuple(secrets), require_all=require_all, require=tuple(dict.fromkeys(require)),
        line=d.line,
    )


def _secret(name: str, secret: str, algorithm: str | None, error, line: int) -> TsigSecret:
    try:
        key = dns.name.from_text(name).canonicalize().to_text()
    except (dns.exception.DNSException, UnicodeError):
        raise error(f'tsig: expected a key name, got "{name}"', line) from None
    try:
        if not base64.b64decode(secret, validate=True):
            raise ValueError
    except (binascii.Error, ValueError):
        raise error(f"tsig: the secret of key {key} is not base64", line) from None
    canonical = None
    if algorithm is not None:
        canonical = ALGORITHMS.get(algorithm.rstrip(".").lower())
        if canonical is None:
            raise error(
                f'tsig: key {key}: algorithm "{algorithm}" is not one of {", ".join(sorted(ALGORITHMS))}', line
            )
    return TsigSecret(name=key, secret=secret, algorithm=canonical)


# BIND's key statement: key "name" { algorithm NAME; secret "BASE64"; };
_TOKEN = re.compile(r'\s+|#[^\n]*|//[^\n]*|/\*.*?\*/|"[^"]*"|[{};]|[^\s{};"#/]+', re.DOTALL)


def _secrets_file(path_text: str, ctx: Context, line: int) -> list[TsigSecret]:
    path = path_text if os.path.isabs(path_text) else os.path.join(ctx.base_dir, path_text)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ctx.error(f"tsig: secrets: cannot read {path}: {exc.strerror}", line) from None
    tokens: list[tuple[str, int]] = []
    lineno = 1
    for match in _TOKEN.finditer(text):
        word = match.group()
        if not word.isspace() and not word.startswith(("#", "//", "/*")):
            tokens.append((word.strip('"'), lineno))
        lineno += word.count("\n")

    def error(message: str, at: int) -> ConfigError:
        return ConfigError(message, filename=path, line=at)

    def expect(i: int, what: str) -> tuple[str, int]:
        if i >= len(tokens):
            raise error(f"tsig: expected {what}, got the end of the file", lineno)
        return tokens[i]

    secrets: list[TsigSecret] = []
    i = 0
    while i < len(tokens):
        word, at = tokens[i]
        if word != "key":
            raise error(f'tsig: expected a `key "NAME" {{ ... }};` statement, got "{word}"', at)
        name, _ = expect(i + 1, "the key's name")
        if expect(i + 2, "{")[0] != "{":
            raise error('tsig: expected "{" after the key name', tokens[i + 2][1])
        i += 3
        fields: dict[str, str] = {}
        while expect(i, '"}"')[0] != "}":
            field, field_line = tokens[i]
            if field not in ("algorithm", "secret"):
                raise error(f'tsig: key {name}: expected algorithm or secret, got "{field}"', field_line)
            value, _ = expect(i + 1, f"the {field}")
            if expect(i + 2, '";"')[0] != ";":
                raise error(f'tsig: key {name}: expected ";" after the {field}', tokens[i + 2][1])
            fields[field] = value
            i += 3
        if expect(i + 1, '";" after "}"')[0] != ";":
            raise error(f'tsig: key {name}: expected ";" after "}}"', tokens[i + 1][1])
        i += 2
        if "secret" not in fields:
            raise error(f"tsig: key {name}: no secret", at)
        secrets.append(_secret(name, fields["secret"], fields.get("algorithm"), error, at))
    return secrets


def check_zones(plugins: dict[str, Any], gateway_zones: tuple[str, ...] | None, ctx: Context) -> None:
    """`transfer` and `tsig` name zones the block's k8s_gateway serves, and need one."""
    for name in ("transfer", "tsig"):
        config = plugins.get(name)
        if config is None:
            continue
        if gateway_zones is None:
            raise ctx.error(f"{name}: needs a k8s_gateway in the same server block", config.line)
        for zone in config.zones:
            if zone not in gateway_zones:
                raise ctx.error(
                    f"{name}: {zone} is not a zone of this block's k8s_gateway ({' '.join(gateway_zones)})",
                    config.line,
                )
