"""Operations: the health, ready and metrics HTTP endpoints, Prometheus metrics, the query log
and the Corefile watcher behind ``reload``.

Nothing here is on the DNS hot path except ``Metrics.observe`` (a few integer increments) and
``QueryLogger.log`` (only when the ``log`` directive is present). The config models these act on
are in ``k8sgw.config.ops``.

    http.py       serve_ops: a tiny GET-only HTTP/1.1 server on trio (h11)
    endpoints.py  routes for /health, /ready, /metrics and serve_endpoints(cfg, ...) for a Config
    metrics.py    Metrics: CoreDNS's metric names plus k8sgw's own, read from the stores at scrape time
    querylog.py   format_entry / QueryLogger: CoreDNS's common log format from wire messages
    logsink.py    LineSink: query-log lines buffered in memory, written in batches by a thread
    reload.py     watch_corefile: new Corefile contents whenever its SHA-256 changes
"""
