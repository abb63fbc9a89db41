"""forward, cache, loadbalance, loop: CoreDNS syntax in, frozen models out, file:line errors."""

from __future__ import annotations

import pytest

from k8sgw.config import parse_corefile
from k8sgw.config.dnsplugins import CacheConfig, ForwardConfig, LoadbalanceConfig, LoopConfig, Upstream
from k8sgw.errors import ConfigError


def block(body: str, tmp_path=None):
    filename = str(tmp_path / "Corefile") if tmp_path else "Corefile"
    (server,) = parse_corefile(f".:1053 {{\n{body}\n}}\n", filename=filename).servers
    return server


def test_forward_addresses_and_defaults():
    fwd = block("forward . 192.0.2.1 192.0.2.2:5353 [2001:db8::1]:53 dns://192.0.2.3").plugin("forward")
    assert isinstance(fwd, ForwardConfig)
    assert fwd.zone == "."
    assert fwd.upstreams == (
        Upstream(host="192.0.2.1"),
        Upstream(host="192.0.2.2", port=5353),
        Upstream(host="2001:db8::1"),
        Upstream(host="192.0.2.3"),
    )
    assert (fwd.policy, fwd.max_fails, fwd.force_tcp, fwd.line) == ("random", 2, False, 2)


def test_forward_reads_resolv_conf(tmp_path):
    (tmp_path / "resolv.conf").write_text("# comment\nsearch example.org\nnameserver 192.0.2.9\nnameserver fe80::1%eth0\n")
    fwd = block("forward example.net resolv.conf", tmp_path).plugin("forward")
    assert fwd.zone == "example.net."
    assert [u.host for u in fwd.upstreams] == ["192.0.2.9", "fe80::1"]


def test_forward_options():
    fwd = block(
        "forward . 192.0.2.1 {\n except internal.example.org Example.COM\n force_tcp\n policy sequential\n"
        " max_fails 0\n max_concurrent 100\n}"
    ).plugin("forward")
    assert fwd.excepts == ("internal.example.org.", "example.com.")
    assert (fwd.force_tcp, fwd.policy, fwd.max_fails, fwd.max_concurrent) == (True, "sequential", 0, 100)


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("forward .", 2, "forward: expected FROM TO..."),
        ("forward . nowhere.conf", 2, 'neither an IP address nor a readable resolv.conf'),
        ("forward . 192.0.2.1:99999", 2, "port must be from 1 to 65535"),
        ("forward . tls://192.0.2.1", 2, "only plain DNS upstreams"),
        ("forward . 192.0.2.1 {\n  tls_servername x\n}", 3, 'option "tls_servername" is not supported'),
        ("forward . 192.0.2.1 {\n  policy fastest\n}", 3, "policy: expected one of random, round_robin, sequential"),
        ("forward . 192.0.2.1 {\n  max_fails -1\n}", 3, "max_fails: expected a non-negative integer"),
        ("forward . 192.0.2.1 {\n  force_tcp\n  prefer_udp\n}", 2, "exclude each other"),
        ("forward . 192.0.2.1\nforward . 192.0.2.2", 3, "forward: given twice (first on line 2)"),
        ("forward . " + " ".join(f"192.0.2.{i}" for i in range(16)), 2, "at most 15 upstreams"),
        ("cache 30 {\n  success 1000\n}", 3, 'cache: option "success" is not supported'),
        ("loadbalance weighted", 2, "only round_robin"),
        ("loop 1", 2, "loop: expected no arguments"),
    ],
)
def test_errors_name_file_and_line(body, line, message):
    with pytest.raises(ConfigError) as err:
        block(body)
    assert str(err.value).startswith(f"Corefile:{line}: ")
    assert message in str(err.value)


def test_cache_loadbalance_loop():
    server = block("cache 30 example.net\nloadbalance round_robin\nloop")
    assert server.plugin("cache") == CacheConfig(max_ttl=30, zones=("example.net.",))
    assert block("cache").plugin("cache") == CacheConfig()
    assert server.plugin("loadbalance") == LoadbalanceConfig()
    assert server.plugin("loop") == LoopConfig()
    assert server.plugin("forward") is None
