"""Prometheus metrics under CoreDNS's names, so existing CoreDNS dashboards and alerts work.

The query path pays for plain integer increments only: ``observe`` finds the cells of one label
combination with a single dict lookup (cached per combination) and bumps them; there are no locks
(everything runs in one trio thread) and no prometheus_client metric objects on that path. Custom
Collectors turn the cells, and the stores' current state, into metric families at scrape time.

Each Metrics has its own CollectorRegistry (never the global one), so tests can make several.

CoreDNS metrics kept (names, labels and buckets as CoreDNS 1.11, without the ``view`` label, which
k8sgw has no use for; an empty label is the same as an absent one in PromQL):

    coredns_build_info{version, revision, goversion}                gauge, 1
    coredns_dns_requests_total{server, zone, proto, family, type}   counter
    coredns_dns_responses_total{server, zone, rcode, plugin}        counter
    coredns_dns_do_requests_total{server, zone}                     counter
    coredns_dns_request_duration_seconds{server, zone, type}        histogram (0.25 ms ... 8.192 s)
    coredns_dns_request_size_bytes{server, zone, proto}             histogram (0 ... 64000)
    coredns_dns_response_size_bytes{server, zone, proto}            histogram (0 ... 64000)

k8sgw's own, one series per k8s_gateway block (``zones``: its zones, space-separated):

    k8sgw_objects{zones, kind}                          objects indexed per kind
    k8sgw_recordmap_version{zones}                      version of the published record map
    k8sgw_recordmap_names{zones}                        names in it (including empty non-terminals)
    k8sgw_recordmap_serial{zones}                       the zone's SOA serial
    k8sgw_ready{zones}                                  1 once every enabled kind has synced
    k8sgw_watch_restarts_total{zones, kind}             watch streams re-opened (counter)
    k8sgw_watch_relists_total{zones, kind}              full relists, e.g. after 410 Gone (counter)
    k8sgw_watch_last_event_age_seconds{zones, kind}     seconds since the last event of the kind
    k8sgw_objects_skipped{zones, kind, reason}          objects that claim a name but supply no record

plus the standard ``process_*`` and ``python_*`` families of prometheus_client.
"""

from __future__ import annotations

import platform
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dns.rcode
import dns.rdatatype
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from k8sgw.explain.metric import skipped_family

# The watcher defines what it reports; a store's observer here implements that protocol.
from k8sgw.kubeapi.watch import NULL_OBSERVER as NULL_WATCH_OBSERVER
from k8sgw.kubeapi.watch import WatchObserver

__all__ = [
    "CONTENT_TYPE",
    "DROPPED",
    "NULL_WATCH_OBSERVER",
    "SIZE_BUCKETS",
    "TIME_BUCKETS",
    "Metrics",
    "QueryCells",
    "WatchObserver",
    "server_label",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""Content-Type of ``render()``: the classic Prometheus text format that every scraper reads (what
``generate_latest`` writes; prometheus_client's CONTENT_TYPE_LATEST now names version 1.0.0)."""

TIME_BUCKETS: tuple[float, ...] = tuple(0.00025 * 2**i for i in range(16))
"""CoreDNS ``plugin.TimeBuckets``: exponential from 0.25 ms, factor 2, 16 buckets (to 8.192 s)."""

SIZE_BUCKETS: tuple[float, ...] = (0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3)
"""CoreDNS request/response size buckets, in bytes."""

DROPPED = "dropped"
"""The ``zone`` of queries dropped before any zone was found (no closing dot: never a real zone)."""

# CoreDNS labels these query types by name and lumps every other type into "other".
_COMMON_TYPES = frozenset(
    "A AAAA MX SOA CNAME PTR TXT NS SRV DS DNSKEY RRSIG NSEC NSEC3 HTTPS IXFR AXFR ANY".split()
)
_TYPE_LABEL = {int(dns.rdatatype.from_text(t)): t for t in _COMMON_TYPES}


def server_label(host: str, port: int) -> str:
    """CoreDNS's ``server`` label: ``dns://:53`` for every address, ``dns://127.0.0.1:53`` with bind."""
    if host in ("", "::", "0.0.0.0"):
        host = ""
    elif ":" in host:
        host = f"[{host}]"
    return f"dns://{host}:{port}"




class _Histogram:
    """Bucket counts (non-cumulative, last = +Inf) and the sum, for one label combination."""

    __slots__ = ("buckets", "counts", "sum")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.sum += value

    def exposition(self) -> list[tuple[str, float]]:
        out, total = [], 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            total += count
            out.append((_go_float(bound), total))
        out.append(("+Inf", total + self.counts[-1]))
        return out


def _go_float(value: float) -> str:
    # Go's FormatFloat(v, 'g', -1, 64), as CoreDNS writes `le`: "100", "16000", "0.00025".
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(slots=True)
class QueryCells:
    """Everything counting one query touches, for one label combination (Metrics.cells)."""

    requests: list[int]
    responses: list[int]
    do: list[int]
    duration: _Histogram
    request_size: _Histogram
    response_size: _Histogram

    def count(self, duration: float, request_size: int, response_size: int, do: bool) -> None:
        """Count one answered query (see Metrics.observe for the arguments)."""
        self.requests[0] += 1
        self.responses[0] += 1
        if do:
            self.do[0] += 1
        # _Histogram.observe, inlined: this runs once per query and calls cost more than the work.
        h = self.duration
        h.counts[bisect_left(h.buckets, duration)] += 1
        h.sum += duration
        h = self.request_size
        h.counts[bisect_left(h.buckets, request_size)] += 1
        h.sum += request_size
        h = self.response_size
        h.counts[bisect_left(h.buckets, response_size)] += 1
        h.sum += response_size


@dataclass
class _Tracked:
    zones: str
    kinds: tuple[str, ...]
    store: Any
    restarts: dict[str, int] = field(default_factory=dict)
    relists: dict[str, int] = field(default_factory=dict)
    last_event: dict[str, float] = field(default_factory=dict)


class _StoreWatchObserver:
    def __init__(self, tracked: _Tracked, clock: Callable[[], float]) -> None:
        self._tracked = tracked
        self._clock = clock

    def watch_restarted(self, kind: str) -> None:
        self._tracked.restarts[kind] = self._tracked.restarts.get(kind, 0) + 1

    def relisted(self, kind: str) -> None:
        self._tracked.relists[kind] = self._tracked.relists.get(kind, 0) + 1

    def event_seen(self, kind: str) -> None:
        self._tracked.last_event[kind] = self._clock()

    def kind_unavailable(self, kind: Any, problem: str | None) -> None:
        pass  # the watcher logs it; `k8sgw explain` reports it (k8sgw/explain/observer.py)


class Metrics:
    """The process's metrics: DNS counters fed by ``observe``, store state read at scrape time.

    Args:
        version, revision: for ``coredns_build_info`` (default: k8sgw's version, no revision).
        clock: monotonic seconds, for the age of the last watch event (tests pass their own).
        process_metrics: also export ``process_*`` and ``python_*`` (off in tests that compare text).
    """

    def __init__(
        self,
        *,
        version: str | None = None,
        revision: str = "",
        clock: Callable[[], float] = time.monotonic,
        process_metrics: bool = True,
    ) -> None:
        if version is None:
            from k8sgw import __version__ as version
        self.registry = CollectorRegistry(auto_describe=False)
        self._build = (version, revision, f"python{platform.python_version()}")
        self._clock = clock
        self._cells: dict[tuple, QueryCells] = {}
        self._requests: dict[tuple[str, ...], list[int]] = {}
        self._responses: dict[tuple[str, ...], list[int]] = {}
        self._do: dict[tuple[str, ...], list[int]] = {}
        self._duration: dict[tuple[str, ...], _Histogram] = {}
        self._request_size: dict[tuple[str, ...], _Histogram] = {}
        self._response_size: dict[tuple[str, ...], _Histogram] = {}
        self._tracked: list[_Tracked] = []
        self.registry.register(_Collector(self._collect))
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

    # -- the query path -----------------------------------------------------------------------

    def observe(
        self,
        proto: str,
        family: int | str,
        qtype: int | str,
        rcode: int | str,
        zone: str | None,
        server: str,
        duration: float,
        request_size: int,
        response_size: int,
        *,
        plugin: str = "k8s_gateway",
        do: bool = False,
    ) -> None:
        """Count one answered query.

        Args:
            proto: "udp" or "tcp".
            family: 1 (IPv4) or 2 (IPv6), CoreDNS's numbering.
            qtype: query type, as a number or a name (uncommon types count as "other").
            rcode: response code, as a number or a name ("NOERROR").
            zone: the zone that answered ("example.com."); None = ``DROPPED``.
            server: see ``server_label``.
            duration: seconds from receiving the query to sending the reply.
            request_size, response_size: bytes on the wire (without the TCP length prefix).
            plugin: what wrote the answer ("k8s_gateway", "forward", ...; "" = the server itself).
            do: the query had the DNSSEC OK bit.
        """
        self.cells(proto, family, qtype, rcode, zone, server, plugin).count(
            duration, request_size, response_size, do
        )

    def cells(
        self, proto: str, family: int | str, qtype: int | str, rcode: int | str, zone: str | None, server: str, plugin: str
    ) -> QueryCells:
        """The cells observe() bumps for one label combination (see there): a caller that counts
        many queries alike keeps them and calls their count()."""
        key = (proto, family, qtype, rcode, zone, server, plugin)
        cells = self._cells.get(key)
        if cells is None:
            cells = self._cells[key] = self._new_cells(key)
        return cells

    def _new_cells(self, key: tuple) -> QueryCells:
        proto, family, qtype, rcode, zone, server, plugin = key
        zone = DROPPED if zone is None else zone
        family = str(family)
        if isinstance(qtype, int):
            type_label = _TYPE_LABEL.get(qtype, "other")
        else:
            type_label = qtype.upper() if qtype.upper() in _COMMON_TYPES else "other"
        rcode_label = rcode if isinstance(rcode, str) else dns.rcode.to_text(dns.rcode.Rcode.make(rcode))
        return QueryCells(
            requests=self._requests.setdefault((server, zone, proto, family, type_label), [0]),
            responses=self._responses.setdefault((server, zone, rcode_label, plugin), [0]),
            do=self._do.setdefault((server, zone), [0]),
            duration=_hist(self._duration, (server, zone, type_label), TIME_BUCKETS),
            request_size=_hist(self._request_size, (server, zone, proto), SIZE_BUCKETS),
            response_size=_hist(self._response_size, (server, zone, proto), SIZE_BUCKETS),
        )

    # -- stores and watchers ------------------------------------------------------------------

    def track_store(self, kind_names: Iterable[str], store: Any) -> WatchObserver:
        """Report ``store`` (a RecordStore) at every scrape; returns the observer for its watchers.

        Args:
            kind_names: the kinds the store indexes (``k8sgw_objects`` has one series per kind).
            store: read at scrape time only: ``current`` (version, ready, serial, len) and
                ``object_count(kind)``.
        """
        zones = getattr(getattr(store, "settings", None), "zones", ())
        label = " ".join(str(z) for z in zones)
        tracked = _Tracked(zones=label, kinds=tuple(kind_names), store=store)
        self._tracked.append(tracked)
        return _StoreWatchObserver(tracked, self._clock)

    def forget_stores(self, stores: Iterable[Any]) -> None:
        """Stop reporting these stores (a reload replaced them)."""
        gone = {id(s) for s in stores}
        self._tracked = [t for t in self._tracked if id(t.store) not in gone]

    # -- scraping ---------------------------------------------------------------------------------

    def render(self) -> bytes:
        """Every metric in the Prometheus text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)

    def _collect(self) -> Iterator[Metric]:
        version, revision, pyversion = self._build
        build = GaugeMetricFamily(
            "coredns_build_info",
            "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.",
            labels=["version", "revision", "goversion"],
        )
        build.add_metric([version, revision, pyversion], 1)
        yield build
        yield _counter(
            "coredns_dns_requests", "Counter of DNS requests made per zone, protocol and family.",
            ["server", "zone", "proto", "family", "type"], self._requests,
        )
        yield _counter(
            "coredns_dns_responses", "Counter of response status codes.",
            ["server", "zone", "rcode", "plugin"], self._responses,
        )
        yield _counter(
            "coredns_dns_do_requests", "Counter of DNS requests with DO bit set per zone.",
            ["server", "zone"], {k: v for k, v in self._do.items() if v[0]},
        )
        yield _histogram(
            "coredns_dns_request_duration_seconds", "Histogram of the time (in seconds) each request took per zone.",
            ["server", "zone", "type"], self._duration,
        )
        yield _histogram(
            "coredns_dns_request_size_bytes", "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
            ["server", "zone", "proto"], self._request_size,
        )
        yield _histogram(
            "coredns_dns_response_size_bytes", "Size of the returned response in bytes.",
            ["server", "zone", "proto"], self._response_size,
        )
        yield from self._collect_stores()

    def _collect_stores(self) -> Iterator[Metric]:
        objects = GaugeMetricFamily("k8sgw_objects", "Kubernetes objects indexed, per kind.", labels=["zones", "kind"])
        version = GaugeMetricFamily("k8sgw_recordmap_version", "Version of the published record map.", labels=["zones"])
        names = GaugeMetricFamily("k8sgw_recordmap_names", "Names in the published record map.", labels=["zones"])
        serial = GaugeMetricFamily("k8sgw_recordmap_serial", "SOA serial of the published record map.", labels=["zones"])
        ready = GaugeMetricFamily("k8sgw_ready", "1 once every enabled kind has finished its first list.", labels=["zones"])
        restarts = CounterMetricFamily("k8sgw_watch_restarts", "Watch streams re-opened, per kind.", labels=["zones", "kind"])
        relists = CounterMetricFamily("k8sgw_watch_relists", "Full relists (e.g. after 410 Gone), per kind.", labels=["zones", "kind"])
        age = GaugeMetricFamily(
            "k8sgw_watch_last_event_age_seconds", "Seconds since the last watch event of the kind.", labels=["zones", "kind"]
        )
        now = self._clock()
        for t in self._tracked:
            current = t.store.current
            version.add_metric([t.zones], current.version)
            names.add_metric([t.zones], len(current))
            serial.add_metric([t.zones], current.serial)
            ready.add_metric([t.zones], 1 if current.ready else 0)
            for kind in t.kinds:
                objects.add_metric([t.zones, kind], t.store.object_count(kind))
                restarts.add_metric([t.zones, kind], t.restarts.get(kind, 0))
                relists.add_metric([t.zones, kind], t.relists.get(kind, 0))
                if kind in t.last_event:
                    age.add_metric([t.zones, kind], max(0.0, now - t.last_event[kind]))
        yield from (objects, version, names, serial, ready, restarts, relists, age)
        yield skipped_family((t.zones, t.store) for t in self._tracked)  # k8sgw/explain/metric.py


class _Collector:
    def __init__(self, collect: Callable[[], Iterator[Metric]]) -> None:
        self.collect = collect


def _hist(table: dict[tuple[str, ...], _Histogram], key: tuple[str, ...], buckets: tuple[float, ...]) -> _Histogram:
    hist = table.get(key)
    if hist is None:
        hist = table[key] = _Histogram(buckets)
    return hist


def _counter(name: str, doc: str, labels: list[str], table: dict[tuple[str, ...], list[int]]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, cell in table.items():
        family.add_metric(list(key), cell[0])
    return family


def _histogram(name: str, doc: str, labels: list[str], table: dict[tuple[str, ...], _Histogram]) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for key, hist in table.items():
        family.add_metric(list(key), buckets=hist.exposition(), sum_value=hist.sum)
    return family
