"""TSIG (RFC 8945): the keys of a listener's server blocks, which queries must be signed, and the
two things dnspython does not do for a server: the error replies of §5.2 and the signing of a
transfer's messages built from raw bytes (§5.3.1).

A signed query is verified while it is parsed (dnspython checks the MAC and the time against the
keyring given); a reply to it made with dns.message.make_response is signed when it is encoded.
"""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

from k8sgw.config.transfer import TsigConfig

__all__ = ["FUDGE", "MultiSigner", "TsigPolicy", "error_reply"]

FUDGE = 300  # seconds of clock skew allowed (RFC 8945 §10 recommends 300)

_ALGORITHM_ERRORS = (dns.tsig.BadAlgorithm, dns.tsig.BadKey, dns.message.UnknownTSIGKey)


@dataclass(frozen=True, slots=True)
class _Block:
    zones: tuple[dns.name.Name, ...]
    config: TsigConfig


class TsigPolicy:
    """The `tsig` directives of the blocks one listener serves.

    Keys are the listener's, whichever block names them (a key is known by its name, as CoreDNS
    does); what must be signed is each block's, for the names in its zones.
    """

    def __init__(self, blocks: Iterable[tuple[tuple[dns.name.Name, ...], TsigConfig]]) -> None:
        # `tsig ZONES...` narrows the block's zones; without zones it covers them all.
        self._blocks = tuple(
            _Block(tuple(dns.name.from_text(z) for z in cfg.zones) or zones, cfg) for zones, cfg in blocks
        )
        self.keyring: dict[dns.name.Name, dns.tsig.Key | bytes] = {}
        for block in self._blocks:
            for secret in block.config.secrets:
                name = dns.name.from_text(secret.name)
                raw = base64.b64decode(secret.secret)
                # Without an algorithm the client's is taken (dnspython builds the Key from the
                # TSIG record when the keyring holds bytes).
                self.keyring[name] = dns.tsig.Key(name, raw, secret.algorithm) if secret.algorithm else raw

    def requires(self, qname: dns.name.Name, rdtype: int) -> bool:
        """A query for qname/rdtype must be signed (`require`), by the block whose zone holds qname."""
        block = self._block_for(qname)
        return block is not None and block.config.requires(rdtype)

    def requires_queries(self) -> bool:
        """Some block requires signed queries of a type other than AXFR and IXFR."""
        transfers = {dns.rdatatype.AXFR, dns.rdatatype.IXFR}
        return any(b.config.require_all or set(b.config.require) - transfers for b in self._blocks)

    def signing_key(self, zone: dns.name.Name) -> dns.tsig.Key | None:
        """The key k8sgw signs its own messages for zone with (NOTIFY): the first secret of the
        block holding the zone; with no algorithm given, hmac-sha256."""
        block = self._block_for(zone)
        if block is None or not block.config.secrets:
            return None
        secret = block.config.secrets[0]
        return dns.tsig.Key(
            secret.name, base64.b64decode(secret.secret), secret.algorithm or dns.tsig.HMAC_SHA256
        )

    def _block_for(self, name: dns.name.Name) -> _Block | None:
        best: _Block | None = None
        depth = -1
        for block in self._blocks:
            for zone in block.zones:
                if name.is_subdomain(zone) and len(zone) > depth:
                    best, depth = block, len(zone)
        return best


def error_reply(wire: bytes, exc: Exception, keyring: dict | None) -> bytes | None:
    """The reply to a signed query that failed verification (RFC 8945 §5.2), or None when the
    query cannot be read at all (the caller answers FORMERR).

    An unknown key or algorithm is BADKEY and a wrong MAC BADSIG, both unsigned (§5.3.2: the
    server has no key to sign with, or cannot trust the one named); a time outside the fudge is
    BADTIME, signed, with the server's time in Other Data so the client can see the skew.
    """
    try:
        query = dns.message.from_wire(wire, keyring=False, ignore_trailing=True)
    except dns.exception.DNSException:
        return None
    if query.tsig is None:
        return None
    tsig = query.tsig[0]
    reply = dns.message.make_response(query)
    reply.set_rcode(dns.rcode.NOTAUTH)
    if isinstance(exc, dns.tsig.BadTime) and keyring:
        key = keyring.get(query.keyname)
        if isinstance(key, bytes):
            key = dns.tsig.Key(query.keyname, key, tsig.algorithm)
        now = int(time.time())
        reply.use_tsig(
            key, tsig_error=dns.rcode.BADTIME, other_data=struct.pack("!HI", now >> 32, now & 0xFFFFFFFF),
            fudge=FUDGE, algorithm=tsig.algorithm,
        )
        reply.request_mac = tsig.mac
        return reply.to_wire()
    error = dns.rcode.BADSIG if isinstance(exc, dns.tsig.BadSignature) else dns.rcode.BADKEY
    unsigned = dns.rdtypes.ANY.TSIG.TSIG(
        dns.rdataclass.ANY, dns.rdatatype.TSIG, tsig.algorithm, tsig.time_signed, tsig.fudge, b"",
        query.id, error, b"",
    )
    return _append_tsig(reply.to_wire(), query.keyname, unsigned)


def is_tsig_failure(exc: Exception) -> bool:
    """exc is what dnspython raises for a signed query that does not verify."""
    return isinstance(exc, (*_ALGORITHM_ERRORS, dns.tsig.BadSignature, dns.tsig.BadTime))


class MultiSigner:
    """Signs the messages of one transfer in sequence (RFC 8945 §5.3.1: each message's MAC covers
    the previous MAC, so a client knows none was dropped or reordered)."""

    def __init__(self, query: dns.message.Message) -> None:
        key = query.keyring
        assert isinstance(key, dns.tsig.Key) and query.mac is not None  # a verified query
        self._key = key
        self._request_mac = query.mac
        self._id = query.id
        self._ctx = None
        self._template = dns.rdtypes.ANY.TSIG.TSIG(
            dns.rdataclass.ANY, dns.rdatatype.TSIG, key.algorithm, 0, FUDGE, b"", query.id, 0, b""
        )

    def sign(self, wire: bytes) -> bytes:
        """wire (a whole message, its ARCOUNT not counting the TSIG) with its TSIG record added."""
        first = self._ctx is None
        rdata, self._ctx = dns.tsig.sign(
            wire, self._key, self._template, int(time.time()), self._request_mac if first else None,
            self._ctx, True,
        )
        return _append_tsig(wire, self._key.name, rdata)


def _append_tsig(wire: bytes, keyname: dns.name.Name, rdata: dns.rdtypes.ANY.TSIG.TSIG) -> bytes:
    data = rdata.to_wire()
    record = keyname.to_wire() + struct.pack("!HHIH", dns.rdatatype.TSIG, dns.rdataclass.ANY, 0, len(data)) + data
    (arcount,) = struct.unpack_from("!H", wire, 10)
    return wire[:10] + struct.pack("!H", arcount + 1) + wire[12:] + record
