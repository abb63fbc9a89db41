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
    coredns_plugin_enabled{server, zone, name}                      gauge, 1 per directive of a block
    coredns_panics_total                                            counter: bugs caught while serving
    coredns_reload_failed_total                                     counter: Corefiles not applied
    coredns_health_request_duration_seconds                         histogram: k8sgw asking its own
                                                                    /health once a second
    coredns_health_request_failures_total                           counter: those that failed
    coredns_cache_entries{server, type, zones}                      gauge; type "success" or "denial"
    coredns_cache_requests_total{server, zones}                     counter
    coredns_cache_hits_total{server, type, zones}                   counter
    coredns_cache_misses_total{server, zones}                       counter
    coredns_forward_requests_total{to}                              counter, per upstream "host:port"
    coredns_forward_responses_total{to, rcode}                      counter
    coredns_forward_request_duration_seconds{to, rcode}             histogram (TIME_BUCKETS)
    coredns_forward_healthcheck_failures_total{to}                  counter: failed exchanges (k8sgw
                                                                    checks health in band)

k8sgw's own, one series per k8s_gateway block (``zones``: its zones, space-separated):

    k8sgw_objects{zones, kind}                          objects indexed per kind
    k8sgw_recordmap_version{zones}                      version of the published record map
    k8sgw_recordmap_names{zones}                        names in it (including empty non-terminals)
    k8sgw_recordmap_serial{zones}                       the zone's SOA serial
    k8sgw_ready{zones}                                  1 once every enabled kind has synced
    k8sgw_watch_restarts_total{zones, kind}             watch streams re-opened (counter)
    k8sgw_watch_relists_total{zones, kind}              full relists, e.g. after 410 Gone (counter)
    k8sgw_watch_last_event_age_seconds{zones, kind}     seconds since the last event of the kind
    k8sgw_cluster_ready{zones, cluster}                 1 once that cluster listed every kind (several clusters)
    k8sgw_cluster_last_event_age_seconds{zones, cluster} seconds since that cluster's last watch event
    k8sgw_objects_skipped{zones, kind, reason}          objects that claim a name but supply no record
    k8sgw_query_log_lines_total{result}                 `log` lines "written", or "unwritten" (stderr
                                                        failed); with the CLI's batched writer only
    k8sgw_query_log_waits_total                         times answering waited for that writer (its
                                                        buffer was full: backpressure)

plus the standard ``process_*`` and ``python_*`` families of prometheus_client.
"""

from __future__ import annotations

import logging
import platform
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import dns.name
import dns.rcode
import dns.rdatatype
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from k8sgw.explain.metric import SkippedSource, skipped_family
from k8sgw.kubeapi.kinds import Kind

# The watcher defines what it reports; a store's observer here implements that protocol.
from k8sgw.kubeapi.watch import NULL_OBSERVER as NULL_WATCH_OBSERVER
from k8sgw.kubeapi.watch import WatchObserver
from k8sgw.ops.logsink import installed as installed_sink

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

SLIM_TIME_BUCKETS: tuple[float, ...] = tuple(0.00025 * 10**i for i in range(5))
"""CoreDNS ``plugin.SlimTimeBuckets`` (the health probe's): 0.25 ms, factor 10, 5 buckets."""

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
    """Everything counting one query touches, for one label combination (Metrics.cells).

    A query is counted in `tally`, by (request size, response size, DO): most queries of one label
    combination repeat a few of those, so counting is a dict increment and a histogram bucket;
    settle() folds the tally into the counters and size histograms, which a scrape does first, so a
    scrape always sees every query counted before it."""

    requests: list[int]
    responses: list[int]
    do: list[int]
    duration: _Histogram
    request_size: _Histogram
    response_size: _Histogram
    tally: dict[tuple[int, int, bool], int] = field(default_factory=dict)

    def count(self, duration: float, request_size: int, response_size: int, do: bool) -> None:
        """Count one answered query (see Metrics.observe for the arguments)."""
        key = (request_size, response_size, do)
        tally = self.tally
        tally[key] = tally.get(key, 0) + 1
        # _Histogram.observe, inlined: this runs once per query and calls cost more than the work.
        h = self.duration
        h.counts[bisect_left(h.buckets, duration)] += 1
        h.sum += duration

    def settle(self) -> None:
        """Move the tally into the counters and histograms."""
        tally, self.tally = self.tally, {}
        for (request_size, response_size, do), n in tally.items():
            self.requests[0] += n
            self.responses[0] += n
            if do:
                self.do[0] += n
            h = self.request_size
            h.counts[bisect_left(h.buckets, request_size)] += n
            h.sum += request_size * n
            h = self.response_size
            h.counts[bisect_left(h.buckets, response_size)] += n
            h.sum += response_size * n


class MapState(Protocol):
    """What a scrape reads of a published record map."""

    @property
    def version(self) -> int: ...
    @property
    def serial(self) -> int: ...
    @property
    def ready(self) -> bool: ...
    def __len__(self) -> int: ...


class ReportedStore(SkippedSource, Protocol):
    """What a scrape reads of a store (a RecordStore): its zones, current map and object counts,
    and its notes (k8sgw_objects_skipped)."""

    @property
    def current(self) -> MapState: ...
    def object_count(self, kind: str) -> int: ...
    def behind(self) -> Mapping[str, tuple[str, ...]]: ...
    @property
    def clusters(self) -> tuple[str, ...]: ...


@dataclass
class StoreMetrics:
    """One store's series, and the WatchObserver its watchers report to."""

    zones: str
    kinds: tuple[str, ...]
    store: ReportedStore
    clock: Callable[[], float]
    restarts: dict[str, int] = field(default_factory=dict)
    relists: dict[str, int] = field(default_factory=dict)
    last_event: dict[str, float] = field(default_factory=dict)
    cluster_last_event: dict[str, float] = field(default_factory=dict)

    def watch_restarted(self, kind: str) -> None:
        self.restarts[kind] = self.restarts.get(kind, 0) + 1

    def relisted(self, kind: str) -> None:
        self.relists[kind] = self.relists.get(kind, 0) + 1

    def event_seen(self, kind: str) -> None:
        self.last_event[kind] = self.clock()

    def kind_unavailable(self, kind: Kind, problem: str | None) -> None:
        pass  # the watcher logs it; `k8sgw explain` reports it (k8sgw/explain/observer.py)

    def for_cluster(self, cluster: str) -> WatchObserver:
        """The observer of one cluster's watchers, when a store merges several: it also keeps
        when that cluster last sent anything (k8sgw_cluster_last_event_age_seconds)."""
        return _ClusterObserver(self, cluster)


@dataclass
class _ClusterObserver:
    store: StoreMetrics
    cluster: str

    def watch_restarted(self, kind: str) -> None:
        self.store.watch_restarted(kind)

    def relisted(self, kind: str) -> None:
        self.store.relisted(kind)

    def event_seen(self, kind: str) -> None:
        self.store.event_seen(kind)
        self.store.cluster_last_event[self.cluster] = self.store.clock()

    def kind_unavailable(self, kind: Kind, problem: str | None) -> None:
        self.store.kind_unavailable(kind, problem)


class CacheSizes(Protocol):
    def sizes(self) -> tuple[int, int]: ...


@dataclass
class CacheMetrics:
    """One `cache` directive's counters (a dnsserver.cache.CacheObserver); entries read at scrape."""

    server: str
    zones: str
    cache: CacheSizes | None = None
    hits: list[int] = field(default_factory=lambda: [0, 0])  # success, denial
    misses: int = 0

    def hit(self, denial: bool) -> None:
        self.hits[denial] += 1

    def miss(self) -> None:
        self.misses += 1


class _ForwardMetrics:
    """Every forwarder's exchanges, by upstream (a dnsserver.forward.ForwardObserver)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, ...], list[int]] = {}
        self.responses: dict[tuple[str, ...], list[int]] = {}
        self.duration: dict[tuple[str, ...], _Histogram] = {}
        self.failures: dict[tuple[str, ...], list[int]] = {}

    def request(self, to: str) -> None:
        self.requests.setdefault((to,), [0])[0] += 1

    def response(self, to: str, rcode: int, duration: float) -> None:
        label = _rcode_label(rcode)
        self.responses.setdefault((to, label), [0])[0] += 1
        _hist(self.duration, (to, label), TIME_BUCKETS).observe(duration)

    def failed(self, to: str) -> None:
        self.failures.setdefault((to,), [0])[0] += 1


class _PanicCounter(logging.Handler):
    """Counts what the servers catch and log with a traceback: a bug that cost one answer or one
    connection, never the server (CoreDNS counts the panics its servers recover from)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = [0]

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.count[0] += 1


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
        self._tracked: list[StoreMetrics] = []
        self._caches: list[CacheMetrics] = []
        self._plugins: dict[tuple[str, ...], list[int]] = {}
        self._reload_failed = [0]
        self._health = _Histogram(SLIM_TIME_BUCKETS)
        self._health_failures = [0]
        self.forward = _ForwardMetrics()
        """The observer every Forwarder reports to."""
        self.panics = _PanicCounter()
        """A logging handler: attached to the "k8sgw" logger while serving, it counts panics."""
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
        rcode_label = rcode if isinstance(rcode, str) else _rcode_label(rcode)
        return QueryCells(
            requests=self._requests.setdefault((server, zone, proto, family, type_label), [0]),
            responses=self._responses.setdefault((server, zone, rcode_label, plugin), [0]),
            do=self._do.setdefault((server, zone), [0]),
            duration=_hist(self._duration, (server, zone, type_label), TIME_BUCKETS),
            request_size=_hist(self._request_size, (server, zone, proto), SIZE_BUCKETS),
            response_size=_hist(self._response_size, (server, zone, proto), SIZE_BUCKETS),
        )

    # -- stores and watchers ------------------------------------------------------------------

    def store_metrics(self, kind_names: Iterable[str], store: ReportedStore) -> StoreMetrics:
        """The series of ``store``, reported once passed to ``report`` (a generation's stores are
        reported from the moment it serves, so two generations never report the same zones).

        Args:
            kind_names: the kinds the store indexes (``k8sgw_objects`` has one series per kind).
            store: read at scrape time only.
        """
        label = " ".join(str(z) for z in store.settings.zones)
        return StoreMetrics(zones=label, kinds=tuple(kind_names), store=store, clock=self._clock)

    def report(
        self,
        stores: Iterable[StoreMetrics],
        caches: Iterable[CacheMetrics] = (),
        plugins: Iterable[tuple[str, str, str]] = (),
    ) -> None:
        """Report these stores and caches at every scrape, and no others; `plugins` are the
        (server, zone, directive) of the running configuration, for coredns_plugin_enabled."""
        self._tracked = list(stores)
        self._caches = list(caches)
        self._plugins = {key: [1] for key in plugins}

    def cache_metrics(self, server: str, zones: Iterable[str]) -> CacheMetrics:
        """The counters of one `cache` (reported once passed to ``report``)."""
        return CacheMetrics(server=server, zones=",".join(zones))

    def track_store(self, kind_names: Iterable[str], store: ReportedStore) -> WatchObserver:
        """Report ``store`` beside those reported already; returns the observer for its watchers."""
        tracked = self.store_metrics(kind_names, store)
        self._tracked.append(tracked)
        return tracked

    def forget_stores(self, stores: Iterable[ReportedStore]) -> None:
        """Stop reporting these stores."""
        gone = {id(s) for s in stores}
        self._tracked = [t for t in self._tracked if id(t.store) not in gone]

    # -- the process ----------------------------------------------------------------------------

    def reload_failed(self) -> None:
        """A changed Corefile was not applied (it did not parse, bind or sync)."""
        self._reload_failed[0] += 1

    def health_probed(self, duration: float | None) -> None:
        """k8sgw asked its own /health: it took `duration` seconds, or failed (None)."""
        if duration is None:
            self._health_failures[0] += 1
        else:
            self._health.observe(duration)

    # -- scraping ---------------------------------------------------------------------------------

    def render(self) -> bytes:
        """Every metric in the Prometheus text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)

    def _collect(self) -> Iterator[Metric]:
        for cells in self._cells.values():
            cells.settle()
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
        yield _counter(
            "coredns_reload_failed", "Counter of the number of failed reload attempts.", [], {(): self._reload_failed}
        )
        yield _counter("coredns_panics", "Bugs caught while serving: each cost one answer or one connection.", [], {(): self.panics.count})
        plugins = GaugeMetricFamily(
            "coredns_plugin_enabled", "A metric that indicates whether a plugin is enabled on per server and zone basis.",
            labels=["server", "zone", "name"],
        )
        for key in self._plugins:
            plugins.add_metric(list(key), 1)
        yield plugins
        yield _histogram(
            "coredns_health_request_duration_seconds", "Histogram of the time (in seconds) each request took.",
            [], {(): self._health} if sum(self._health.counts) else {},
        )
        yield _counter(
            "coredns_health_request_failures", "The number of times the health check failed.", [],
            {(): self._health_failures},
        )
        yield from self._collect_caches()
        fwd = self.forward
        yield _counter("coredns_forward_requests", "Counter of requests made per upstream.", ["to"], fwd.requests)
        yield _counter(
            "coredns_forward_responses", "Counter of responses received per upstream.", ["to", "rcode"], fwd.responses
        )
        yield _histogram(
            "coredns_forward_request_duration_seconds", "Histogram of the time each request took.",
            ["to", "rcode"], fwd.duration,
        )
        yield _counter(
            "coredns_forward_healthcheck_failures", "Counter of the number of failed healthchecks.", ["to"], fwd.failures
        )
        yield from self._collect_stores()
        yield from _collect_query_log()

    def _collect_caches(self) -> Iterator[Metric]:
        entries = GaugeMetricFamily(
            "coredns_cache_entries", "The number of elements in the cache.", labels=["server", "type", "zones"]
        )
        requests = CounterMetricFamily(
            "coredns_cache_requests", "The count of cache requests.", labels=["server", "zones"]
        )
        hits = CounterMetricFamily("coredns_cache_hits", "The count of cache hits.", labels=["server", "type", "zones"])
        misses = CounterMetricFamily("coredns_cache_misses", "The count of cache misses.", labels=["server", "zones"])
        for c in self._caches:
            success, denial = c.cache.sizes() if c.cache is not None else (0, 0)
            entries.add_metric([c.server, "success", c.zones], success)
            entries.add_metric([c.server, "denial", c.zones], denial)
            requests.add_metric([c.server, c.zones], sum(c.hits) + c.misses)
            hits.add_metric([c.server, "success", c.zones], c.hits[0])
            hits.add_metric([c.server, "denial", c.zones], c.hits[1])
            misses.add_metric([c.server, c.zones], c.misses)
        yield from (entries, requests, hits, misses)

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
        cluster_ready = GaugeMetricFamily(
            "k8sgw_cluster_ready", "1 once the cluster has listed every kind (several clusters in one zone).",
            labels=["zones", "cluster"],
        )
        cluster_age = GaugeMetricFamily(
            "k8sgw_cluster_last_event_age_seconds", "Seconds since the cluster's watchers last saw an event.",
            labels=["zones", "cluster"],
        )
        now = self._clock()
        for t in self._tracked:
            behind = t.store.behind()
            for cluster in (c for c in t.store.clusters if c):  # "" is the one cluster of a block
                cluster_ready.add_metric([t.zones, cluster], 0 if cluster in behind else 1)
                if cluster in t.cluster_last_event:
                    cluster_age.add_metric([t.zones, cluster], max(0.0, now - t.cluster_last_event[cluster]))
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
        yield from (objects, version, names, serial, ready, restarts, relists, age, cluster_ready, cluster_age)
        yield skipped_family((t.zones, t.store) for t in self._tracked)  # k8sgw/explain/metric.py


class _Collector:
    def __init__(self, collect: Callable[[], Iterator[Metric]]) -> None:
        self.collect = collect


def _rcode_label(rcode: int) -> str:
    try:
        return dns.rcode.to_text(dns.rcode.Rcode.make(rcode))
    except ValueError:
        return str(rcode)


def _hist(table: dict[tuple[str, ...], _Histogram], key: tuple[str, ...], buckets: tuple[float, ...]) -> _Histogram:
    hist = table.get(key)
    if hist is None:
        hist = table[key] = _Histogram(buckets)
    return hist


def _collect_query_log() -> Iterator[Metric]:
    sink = installed_sink()
    if sink is None:
        return
    yield _counter(
        "k8sgw_query_log_lines", "Query-log lines written, or not (the stream failed).", ["result"],
        {("written",): [sink.written], ("unwritten",): [sink.unwritten]},
    )
    yield _counter("k8sgw_query_log_waits", "Times answering waited for the query-log writer.", [], {(): [sink.waits]})


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
