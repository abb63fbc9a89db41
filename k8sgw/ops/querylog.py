"""The query log of the ``log`` directive: CoreDNS's log formats, one line per query.

    192.0.2.1:41234 - 4242 "A IN web.example.com. udp 52 false 1232" NOERROR qr,aa,rd 68 0.000131s

Reads only what a log line needs straight from the wire messages (header, question, the OPT
record), without building dnspython messages, so a logged query costs microseconds. Placeholders
follow CoreDNS's replacer: ``{>header}`` ones are case-insensitive, an unknown ``{>x}`` becomes
``-``, any other unknown ``{x}`` is left as written, and an empty value is ``-``.

Logged at INFO on the logger "k8sgw.query", so ``-log.level warning`` silences it. The constant
part of a line is rendered once per distinct (query, reply) pair, both without their IDs: a
repeated query's line is one str.format of the client's address and port, the ID, the duration
(and {when}). Under the CLI the lines go to the process's LineSink (logsink.py), which writes them
in batches from another thread with the same prefix logging gives; otherwise through logging.
"""

from __future__ import annotations

import functools
import logging
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from k8sgw.config.ops import COMMON_LOG_FORMAT, LOG_CLASSES, LogConfig
from k8sgw.ops.logsink import LineSink, Prefix, installed

__all__ = [
    "MAX_MEMO_BYTES",
    "QUERY_LOGGER",
    "Memo",
    "QueryLogger",
    "WireSummary",
    "classify",
    "format_entry",
    "memo_key",
    "summarize",
]

QUERY_LOGGER = "k8sgw.query"

_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength
_OPT, _SOA, _NS = 41, 6, 2
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_FLAGS = (("qr", 0x8000), ("aa", 0x0400), ("tc", 0x0200), ("rd", 0x0100), ("ra", 0x0080), ("z", 0x0040),
          ("ad", 0x0020), ("cd", 0x0010))


@dataclass(frozen=True, slots=True)
class WireSummary:
    """What a log line needs from one DNS message; None where the wire did not say."""

    size: int
    id: int
    flags: int
    opcode: int
    rcode: int
    """Including the extended bits from OPT (BADVERS = 16)."""
    ancount: int
    qname: dns.name.Name | None
    qtype: int | None
    qclass: int | None
    edns_payload: int | None
    """The OPT record's UDP payload size; None = no OPT."""
    edns_version: int | None
    do: bool
    authority_soa: bool
    authority_ns: bool


def summarize(wire: bytes) -> WireSummary | None:
    """Read header, question and OPT from a DNS message; None when not even the header is there."""
    if len(wire) < 12:
        return None
    msg_id, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    qname = qtype = qclass = payload = version = None
    do = soa = ns = False
    ext_rcode = 0
    try:
        offset = 12
        if qdcount:
            labels, offset = _read_name(wire, offset)
            qname = dns.name.Name(labels)
            qtype, qclass = struct.unpack_from("!HH", wire, offset)
            offset += 4
            for _ in range(qdcount - 1):
                offset = _skip_name(wire, offset) + 4
        for index in range(ancount + nscount + arcount):
            offset = _skip_name(wire, offset)
            rdtype, rdclass, ttl, rdlength = _RR_FIXED.unpack_from(wire, offset)
            offset += _RR_FIXED.size + rdlength
            if index < ancount:
                continue
            if index < ancount + nscount:
                soa = soa or rdtype == _SOA
                ns = ns or rdtype == _NS
            elif rdtype == _OPT:
                payload, ext_rcode, version, do = rdclass, ttl >> 24, (ttl >> 16) & 0xFF, bool(ttl & 0x8000)
    except (struct.error, IndexError, ValueError, dns.exception.DNSException):
        pass  # truncated or malformed past the header: log what was read
    return WireSummary(
        size=len(wire), id=msg_id, flags=flags, opcode=(flags >> 11) & 0xF, rcode=(ext_rcode << 4) | (flags & 0xF),
        ancount=ancount, qname=qname, qtype=qtype, qclass=qclass, edns_payload=payload, edns_version=version, do=do,
        authority_soa=soa, authority_ns=ns,
    )


def _read_name(wire: bytes, offset: int) -> tuple[list[bytes], int]:
    labels: list[bytes] = []
    end = None
    for _ in range(128):  # a loop of compression pointers must end
        length = wire[offset]
        if length >= 0xC0:
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | wire[offset + 1]
            continue
        if length > 63:
            raise ValueError("bad label type")
        if length == 0:
            labels.append(b"")
            return labels, offset + 1 if end is None else end
        labels.append(bytes(wire[offset + 1 : offset + 1 + length]))
        if offset + 1 + length > len(wire):
            raise ValueError("truncated label")
        offset += 1 + length
    raise ValueError("compression loop")


def _skip_name(wire: bytes, offset: int) -> int:
    while True:
        length = wire[offset]
        if length >= 0xC0:
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def classify(reply: WireSummary | None) -> str:
    """CoreDNS's response class: "success", "denial" (NXDOMAIN, NODATA) or "error"."""
    if reply is None:
        return "error"
    if reply.rcode == dns.rcode.NXDOMAIN:
        return "denial"
    if reply.rcode != dns.rcode.NOERROR:
        return "error"
    if reply.ancount > 0 or (reply.authority_ns and not reply.authority_soa):  # an answer or a referral
        return "success"
    return "denial"


def _wire(message: bytes | dns.message.Message | None) -> bytes | None:
    if message is None or isinstance(message, bytes | bytearray | memoryview):
        return None if message is None else bytes(message)
    return message.to_wire()


def format_entry(
    query: bytes | dns.message.Message | WireSummary,
    reply: bytes | dns.message.Message | WireSummary | None,
    *,
    remote: tuple[str, int],
    proto: str,
    duration: float,
    fmt: str = COMMON_LOG_FORMAT,
    clock: Callable[[], float] = time.time,
) -> str:
    """One log line for ``query`` and its ``reply`` (None: no reply was sent).

    Args:
        query, reply: wire bytes (cheapest), dnspython messages, or ``summarize`` results.
        remote: the client's (address, port).
        proto: "udp" or "tcp".
        duration: seconds taken to answer.
        fmt: a CoreDNS log format (``LogConfig.format``).
        clock: for ``{when}``.
    """
    q = query if isinstance(query, WireSummary) else summarize(_wire(query) or b"")
    r = reply if isinstance(reply, WireSummary) or reply is None else summarize(_wire(reply) or b"")
    values = _line_values(remote, proto, clock)
    if q is not None:
        values.update(_query_values(q))
        values["{>id}"] = str(q.id)
        values["{>bufsize}"] = _bufsize(q.edns_payload, proto)
    if r is not None:
        values.update(_reply_values(r))
        values["{duration}"] = _seconds(duration)
    return _template(fmt).render(values)


def _line_values(remote: tuple[str, int], proto: str, clock: Callable[[], float]) -> dict[str, str]:
    """The values that differ from one line to the next, whatever the messages."""
    host = remote[0]
    return {
        "{remote}": f"[{host}]" if ":" in host else host,
        "{port}": str(remote[1]),
        "{proto}": proto,
        "{when}": _when(int(clock())),
    }


def _query_values(q: WireSummary) -> dict[str, str]:
    """The values a query gives, but its ID and {>bufsize} (which depends on the transport)."""
    values = {"{>opcode}": str(q.opcode), "{size}": str(q.size), "{>do}": "true" if q.do else "false"}
    if q.qname is not None:
        values["{name}"] = q.qname.to_text()
        values["{type}"] = dns.rdatatype.to_text(q.qtype)
        values["{class}"] = dns.rdataclass.to_text(q.qclass)
    return values


def _reply_values(r: WireSummary) -> dict[str, str]:
    """The values a reply gives; they do not depend on its ID."""
    return {
        "{rcode}": _rcode_text(r.rcode),
        "{rsize}": str(r.size),
        "{>rflags}": ",".join(name for name, bit in _FLAGS if r.flags & bit),
    }


def _bufsize(edns_payload: int | None, proto: str) -> str:
    # CoreDNS edns.Size: 64 KiB over TCP, else the client's payload, at least 512.
    return "65535" if proto == "tcp" else str(max(edns_payload or 0, 512))


@functools.lru_cache(maxsize=4)
def _when(second: int) -> str:
    # Lines of one second share it: strftime/localtime per line would cost more than the line.
    return time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(second))


_KNOWN = frozenset(
    "{remote} {port} {proto} {when} {size} {name} {type} {class} {rcode} {rsize} {duration}".split()
)


class _Template:
    """A log format, split once into literal text and placeholders (CoreDNS's replacer rules)."""

    def __init__(self, fmt: str) -> None:
        # (text, None): literal; (key, fallback): a placeholder's value, or fallback when it has none.
        self.parts: list[tuple[str, str | None]] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(fmt):
            self.parts.append((fmt[pos : match.start()], None))
            token = match.group(0)
            if token.startswith("{>"):
                self.parts.append((token.lower(), "-"))  # header placeholders: case-insensitive
            elif token in _KNOWN:
                self.parts.append((token, "-"))
            else:
                self.parts.append((token, None))  # unknown: left as written
            pos = match.end()
        self.parts.append((fmt[pos:], None))

    def render(self, values: dict[str, str]) -> str:
        return "".join(
            text if fallback is None else (values.get(text) or fallback) for text, fallback in self.parts
        )

    def compile(self, values: dict[str, str], *, duration: bool, prefixed: bool) -> str:
        """The line with `values` filled in, as a str.format string whose fields are the values
        that differ between repeats of one query: {0} the prefix (when `prefixed`, which also ends
        the line with a newline), {1} remote, {2} port, {3} ID, {4} duration (a slot only when
        `duration`: else it is "-" like any value missing), {5} {when}."""
        slots = _SLOTS if duration else _SLOTS_NO_DURATION
        out = ["{0}"] if prefixed else []
        for text, fallback in self.parts:
            if fallback is None:
                out.append(text.replace("{", "{{").replace("}", "}}"))
            elif text in slots:
                out.append(slots[text])
            else:
                out.append((values.get(text) or fallback).replace("{", "{{").replace("}", "}}"))
        if prefixed:
            out.append("\n")
        return "".join(out)

    @property
    def uses_when(self) -> bool:
        return any(text == "{when}" for text, fallback in self.parts if fallback is not None)


_SLOTS = {"{remote}": "{1}", "{port}": "{2}", "{>id}": "{3}", "{duration}": "{4}", "{when}": "{5}"}
_SLOTS_NO_DURATION = {k: v for k, v in _SLOTS.items() if k != "{duration}"}


@functools.lru_cache(maxsize=32)
def _template(fmt: str) -> _Template:
    return _Template(fmt)


def _rcode_text(rcode: int) -> str:
    try:
        return dns.rcode.to_text(dns.rcode.Rcode(rcode))
    except ValueError:
        return str(rcode)


def _seconds(duration: float) -> str:
    # Go: strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s" of a nanosecond Duration. Durations
    # have few significant digits, so the shortest form is the exact one, trailing zeros cut.
    ns = round(duration * 1e9)
    if 0 < ns < 1_000_000_000:  # the usual case, without divisions: "0." and nine digits, zeros cut
        return "0." + str(ns + 1_000_000_000)[1:].rstrip("0") + "s"
    ns = max(ns, 0)
    text = f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}".rstrip("0").rstrip(".")
    return text + "s"


MAX_MEMO_BYTES = 16 * 1024 * 1024
"""What one per-query memo (of a listener's metrics, or of one `log` directive on a listener, for
queries and for replies) may hold, counted as MEMO_ENTRY_BYTES per entry plus its key; past it the
memo starts over, which costs only reading queries again. About 25,000 distinct queries fit."""

MEMO_ENTRY_BYTES = 600
"""What an entry costs beyond its key's bytes: tracemalloc says 400 (metrics) to 700 (log) bytes
per distinct query for the dict slot, the key object and what was read from it."""

MAX_KEY_BYTES = 512
"""A longer query is memoised by its header, question and OPT header without the EDNS options,
which change nothing k8sgw answers or logs but {size}; a longer reply is not memoised (read anew)."""


class Memo:
    """A dict from message bytes (minus the ID) to what was read from them, bounded in bytes.

    Each distinct query or reply is read once: a repeated one costs a dict lookup, like the fast
    path's replies. A flood of distinct or padded queries cannot grow it past MAX_MEMO_BYTES.
    """

    __slots__ = ("_bytes", "entries", "max_bytes")

    def __init__(self, max_bytes: int = MAX_MEMO_BYTES) -> None:
        self.entries: dict[bytes, object] = {}
        self.max_bytes = max_bytes
        self._bytes = 0

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def size(self) -> int:
        """Bytes counted against max_bytes."""
        return self._bytes

    def put(self, key, value, weight: int | None = None):
        """entries[key] = value (starting over when full); returns value. `weight`: the bytes
        the key and value hold, for a key that is not bytes (default: len(key))."""
        cost = (len(key) if weight is None else weight) + MEMO_ENTRY_BYTES
        if self._bytes + cost > self.max_bytes:
            self.entries.clear()
            self._bytes = 0
        if key not in self.entries:
            self._bytes += cost
        self.entries[key] = value
        return value


def memo_key(query: bytes) -> bytes | None:
    """The memo key of a query: its bytes minus the ID; for one over MAX_KEY_BYTES, that without
    its EDNS options (None: it cannot be read that far, so it is not memoised)."""
    if len(query) <= MAX_KEY_BYTES:
        return query[2:]
    try:
        _, _, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(query)
        offset = 12
        for _ in range(qdcount):
            offset = _skip_name(query, offset) + 4
        for _ in range(ancount + nscount + arcount):
            offset = _skip_name(query, offset)
            rdtype, _, _, rdlength = _RR_FIXED.unpack_from(query, offset)
            offset += _RR_FIXED.size
            if rdtype == _OPT:
                # Up to the OPT's fixed fields, with its RDLENGTH zeroed; what follows it is kept.
                rest = query[offset + rdlength :]
                key = query[2 : offset - 2] + b"\0\0" + rest
                return key if len(key) <= MAX_KEY_BYTES else None
            offset += rdlength
    except (struct.error, IndexError):
        return None
    return None


class QueryLogger:
    """Applies one ``log`` directive: scope by name, filter by response class, format, log.

    Args:
        cfg: the directive's model.
        logger: its level decides whether lines are logged (default "k8sgw.query", at INFO); a
            logger given here also receives the lines (no sink).
        sink: where finished lines go, prefixed as LOG_FORMAT does; default: the process's
            (logsink.installed()) unless a logger is given. None there: lines go to the logger.
    """

    def __init__(self, cfg: LogConfig, logger: logging.Logger | None = None, sink: LineSink | None = None) -> None:
        self.cfg = cfg
        self.sink = sink if sink is not None or logger is not None else installed()
        self.logger = logger or logging.getLogger(QUERY_LOGGER)
        self._all_names = "." in cfg.names
        self._all_classes = cfg.classes >= frozenset(LOG_CLASSES)
        self._scopes = tuple(dns.name.from_text(n) for n in cfg.names)
        self._template = _template(cfg.format)
        self._uses_when = self._template.uses_when
        self._prefix = Prefix("INFO", self.logger.name)
        self._prefix_ms = -1
        self._prefix_text = ""
        # query key (memo_key) → (its values, EDNS payload), or None: not logged (unreadable, out of scope)
        self._queries = Memo()
        self._replies = Memo()  # reply minus ID → (values, class)
        # (proto, query minus ID, reply minus ID or None) → the line as Template.compile gives
        # it, or None: not logged. What is left to fill in is what differs between repeats.
        self._lines = Memo()

    def log(
        self,
        query: bytes,
        reply: bytes | None,
        *,
        remote: tuple[str, int],
        proto: str,
        duration: float,
    ) -> None:
        """Log one query and its reply (None: dropped) if the directive selects it."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        if len(query) > MAX_KEY_BYTES or (reply is not None and len(reply) > MAX_KEY_BYTES):
            line = self._compile(query, reply, proto)  # not memoised: {size} is the query's own
        else:
            key = (proto, query[2:], reply[2:] if reply is not None else None)
            line = self._lines.entries.get(key, _UNREAD)
            if line is _UNREAD:
                line = self._compile(query, reply, proto)
                self._lines.put(key, line, len(query) + len(reply or b"") + len(line or ""))
        if line is None:
            return
        now = time.time()
        host = remote[0]
        sink = self.sink
        if sink is not None:
            ms = int(now * 1000)
            if ms != self._prefix_ms:  # the lines of one millisecond share their prefix (Prefix renders it as logging would)
                self._prefix_ms = ms
                self._prefix_text = self._prefix(now)
        ns = round(duration * 1e9)  # _seconds, inlined for its usual case (under a second)
        text = line.format(
            self._prefix_text,
            (f"[{host}]" if ":" in host else host) or "-",
            remote[1],
            query[0] << 8 | query[1],
            ("0." + str(ns + 1_000_000_000)[1:].rstrip("0") + "s" if 0 < ns < 1_000_000_000 else _seconds(duration)),
            _when(int(now)) if self._uses_when else "",
        )
        if sink is not None:
            sink.append(text)
        else:
            self.logger.info("%s", text)

    def _compile(self, query: bytes, reply: bytes | None, proto: str) -> str | None:
        """The line of `query` and `reply` but for what differs between repeats; None: not logged."""
        key = memo_key(query)
        known = self._queries.entries.get(key, _UNREAD) if key is not None else _UNREAD
        if known is _UNREAD:
            known = self._read_query(query)
            if key is not None:
                self._queries.put(key, known)
        if known is None:
            return None
        query_values, payload = known
        reply_values, cls = self._read_reply(reply) if reply is not None else (None, "error")
        if not self._all_classes and cls not in self.cfg.classes:
            return None
        values = {"{proto}": proto, **query_values}
        values["{size}"] = str(len(query))  # a memo key may leave the EDNS options out
        values["{>bufsize}"] = _bufsize(payload, proto)
        if reply_values is not None:
            values.update(reply_values)
        return self._template.compile(values, duration=reply is not None, prefixed=self.sink is not None)

    def _read_reply(self, reply: bytes) -> tuple[dict[str, str], str]:
        read = self._replies.entries.get(reply[2:]) if len(reply) <= MAX_KEY_BYTES else None
        if read is None:
            r = summarize(reply)
            read = (_reply_values(r) if r else {}, classify(r))
            if len(reply) <= MAX_KEY_BYTES:
                self._replies.put(reply[2:], read)
        return read

    def _read_query(self, query: bytes) -> tuple[dict[str, str], int | None] | None:
        q = summarize(query)
        if q is None:
            return None
        if not self._all_names and (q.qname is None or not any(q.qname.is_subdomain(s) for s in self._scopes)):
            return None
        return _query_values(q), q.edns_payload


_UNREAD = object()
