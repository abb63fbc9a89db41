"""The operations directives: CoreDNS syntax and defaults, and a file:line error for bad input."""

from __future__ import annotations

import pytest

import k8sgw.config.ops as ops_config
from k8sgw.config import ConfigError, parse_corefile
from k8sgw.config.ops import (
    COMBINED_LOG_FORMAT,
    COMMON_LOG_FORMAT,
    ErrorsConfig,
    HealthConfig,
    LogConfig,
    PrometheusConfig,
    ReadyConfig,
    ReloadConfig,
    parse_address,
    parse_duration,
)


def plugin(line: str, name: str | None = None):
    """Parse `line` as the directive on line 2 of a one-block Corefile; return its model."""
    cfg = parse_corefile(f"example.org {{\n{line}\n}}\n", filename="Corefile", env={})
    (server,) = cfg.servers
    return server.plugin(name or line.split()[0])


def error(line: str) -> str:
    with pytest.raises(ConfigError) as info:
        plugin(line)
    return str(info.value)


def test_public_api() -> None:
    public = {n for n in dir(ops_config) if not n.startswith("_")}
    imported = {"annotations", "ipaddress", "re", "Annotated", "BaseModel", "ConfigDict", "Field", "Directive",
                "Context", "count_args", "directive", "no_block", "no_options", "Iterator"}
    assert set(ops_config.__all__) == public - imported


# --- defaults: CoreDNS's ----------------------------------------------------------------------


def test_defaults() -> None:
    assert plugin("health") == HealthConfig(host="", port=8080, lameduck=0.0, line=2)
    assert plugin("ready") == ReadyConfig(host="", port=8181, line=2)
    assert plugin("prometheus") == PrometheusConfig(host="", port=9153, line=2)
    assert plugin("errors") == ErrorsConfig(line=2)
    assert plugin("reload") == ReloadConfig(interval=30.0, jitter=15.0, line=2)
    log = plugin("log")
    assert log == LogConfig(line=2)
    assert log.names == (".",) and log.format == COMMON_LOG_FORMAT
    assert log.classes == {"success", "denial", "error"}


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        (":8080", "", 8080),
        ("127.0.0.1:8081", "127.0.0.1", 8081),
        ("[::1]:8082", "::1", 8082),
        ("[::]:8083", "::", 8083),
        ("localhost:9153", "localhost", 9153),
        ("0.0.0.0:0", "0.0.0.0", 0),
    ],
)
def test_addresses(text: str, host: str, port: int) -> None:
    assert parse_address(text, 8080) == (host, port)
    for name in ("health", "ready", "prometheus"):
        model = plugin(f"{name} {text}")
        assert (model.host, model.port) == (host, port)


@pytest.mark.parametrize(
    "text",
    ["8080", "localhost", ":", ":http", ":65536", "::1:8080", "[::1]", "[::1]8080", "[nope]:80", "1.2.3:80", "-a:80",
     ":-1", ":８０"],
)
def test_bad_addresses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text, 8080)
    message = error(f"health {text}")
    assert message.startswith("Corefile:2: health: expected an address like \":8080\"")
    assert f'got "{text}"' in message


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("5s", 5.0), ("500ms", 0.5), ("1m", 60.0), ("1m30s", 90.0), ("1.5h", 5400.0), ("+2s", 2.0),
     ("250us", 0.00025), ("10µs", 0.00001), ("3ns", 3e-9), (".5s", 0.5), ("1.s", 1.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "s", "5x", "-5s", "1.2.3s", "5 s", "5S", "1d", ".s", "+"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


# --- health ---------------------------------------------------------------------------------


def test_health_lameduck() -> None:
    model = plugin("health :8080 {\n  lameduck 5s\n}")
    assert model == HealthConfig(port=8080, lameduck=5.0, line=2)
    assert plugin("health { lameduck 1m500ms }").lameduck == pytest.approx(60.5)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("health :8080 :8081", "Corefile:2: health: expected [ADDRESS], got 2 arguments"),
        ("health {\n lameduck\n}", "Corefile:3: lameduck: expected 1 argument (DURATION), got 0 arguments"),
        ("health {\n lameduck 5\n}", 'Corefile:3: lameduck: expected a duration like "5s", "500ms" or "1m30s", got "5"'),
        ("health {\n lameduck 5s 6s\n}", "Corefile:3: lameduck: expected 1 argument (DURATION), got 2 arguments"),
        ("health {\n lameduck -5s\n}", 'Corefile:3: lameduck: expected a duration like "5s", "500ms" or "1m30s", got "-5s"'),
        ("health {\n slowly 5s\n}", 'Corefile:3: health: unknown option "slowly" (expected: lameduck DURATION)'),
        ("health {\n lameduck 5s\n lameduck 6s\n}", "Corefile:4: lameduck: given twice (first on line 3)"),
        ("health\nhealth :8081", "Corefile:3: health: given twice (first on line 2)"),
    ],
)
def test_health_errors(line: str, message: str) -> None:
    assert error(line) == message


# --- ready, prometheus, errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ready :8181 :8182", "Corefile:2: ready: expected [ADDRESS], got 2 arguments"),
        ("ready { x }", "Corefile:2: ready: does not take a block"),
        ("prometheus :9153 :9154", "Corefile:2: prometheus: expected [ADDRESS], got 2 arguments"),
        ("prometheus {\n tls web.yml\n}", 'Corefile:3: prometheus: option "tls" is not supported by k8sgw'),
        ("errors stdout", "Corefile:2: errors: expected no arguments, got 1 argument"),
        ("errors {\n consolidate 5m .*\n}", 'Corefile:3: errors: option "consolidate" is not supported by k8sgw'),
    ],
)
def test_other_errors(line: str, message: str) -> None:
    assert error(line) == message


# --- reload ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "interval", "jitter"),
    [
        ("reload", 30.0, 15.0),
        ("reload 10s", 10.0, 5.0),  # jitter capped at interval / 2, as CoreDNS
        ("reload 10s 2s", 10.0, 2.0),
        ("reload 2s 0s", 2.0, 0.0),
        ("reload 2s 0", 2.0, 0.0),
        ("reload 10s 8s", 10.0, 5.0),
        ("reload 1m 1s", 60.0, 1.0),
    ],
)
def test_reload(line: str, interval: float, jitter: float) -> None:
    assert plugin(line) == ReloadConfig(interval=interval, jitter=jitter, line=2)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("reload foo", 'Corefile:2: reload: expected a duration like "5s", "500ms" or "1m30s", got "foo"'),
        ("reload 10s foo", 'Corefile:2: reload: expected a duration like "5s", "500ms" or "1m30s", got "foo"'),
        ("reload 10s 5s foo", "Corefile:2: reload: expected [INTERVAL [JITTER]], got 3 arguments"),
        ("reload 1s", 'Corefile:2: reload: the interval must be at least 2s, got "1s"'),
        ("reload 0s", 'Corefile:2: reload: the interval must be at least 2s, got "0s"'),
        ("reload 3s 0.5s", 'Corefile:2: reload: the jitter must be 0 or at least 1s, got "0.5s"'),
        ("reload 3s -1s", 'Corefile:2: reload: expected a duration like "5s", "500ms" or "1m30s", got "-1s"'),
        ("reload\nreload", "Corefile:3: reload: given twice (first on line 2)"),
    ],
)
def test_reload_errors(line: str, message: str) -> None:
    assert error(line) == message


def test_reload_pick_interval() -> None:
    cfg = ReloadConfig(interval=30.0, jitter=15.0, line=1)
    assert cfg.pick_interval(0.0) == 22.5
    assert cfg.pick_interval(0.5) == 30.0
    assert cfg.pick_interval(0.999999) == pytest.approx(37.5, abs=1e-4)


# --- log ------------------------------------------------------------------------------------


def test_log_forms() -> None:
    assert plugin("log example.org").names == ("example.org.",)
    assert plugin("log a.example.org B.example.org").names == ("a.example.org.", "b.example.org.")
    assert plugin("log {combined}").format == COMBINED_LOG_FORMAT
    assert plugin("log . {common}").format == COMMON_LOG_FORMAT
    custom = plugin('log example.org "{remote} {name} {rcode}"')
    assert custom.names == ("example.org.",) and custom.format == "{remote} {name} {rcode}"
    assert plugin("log {\n class denial error\n}").classes == {"denial", "error"}
    assert plugin("log {\n class all\n}").classes == {"success", "denial", "error"}
    assert plugin("log {\n class SUCCESS\n}").classes == {"success"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("log {\n class\n}", "Corefile:3: class: expected one or more of: all, success, denial, error, got 0 arguments"),
        ("log {\n class nodata\n}", 'Corefile:3: class: expected all, success, denial or error, got "nodata"'),
        ("log {\n level debug\n}", 'Corefile:3: log: unknown option "level" (expected: class CLASSES...)'),
        ("log {\n class error\n class denial\n}", "Corefile:4: class: given twice (first on line 3)"),
        ("log bad..name", 'Corefile:2: log: expected a DNS name like "example.com", got "bad..name"'),
    ],
)
def test_log_errors(line: str, message: str) -> None:
    assert error(line) == message


def test_full_ops_corefile() -> None:
    """A complete Corefile with every operations directive (the DNS ones are tested in tests/config)."""
    cfg = parse_corefile(
        """\
.:1053 {
    errors
    log
    health :8080 { lameduck 5s }
    ready :8181
    prometheus :9153
    reload
    k8s_gateway example.com
}
""",
        env={},
    )
    (server,) = cfg.servers
    assert set(server.plugins) == {"errors", "log", "health", "ready", "prometheus", "reload"}
    assert server.plugin("health").lameduck == 5.0
