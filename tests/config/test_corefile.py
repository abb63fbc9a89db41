"""parse_corefile / load: what a Corefile means, and every way it can be wrong."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import k8sgw.config
from k8sgw.config import (
    SUPPORTED_DIRECTIVES,
    SUPPORTED_RESOURCES,
    Config,
    ConfigError,
    GatewayConfig,
    KubeconfigRef,
    ServerBlock,
    ServerKey,
    load,
    parse_corefile,
)


def parse(text: str, **kwargs) -> Config:
    kwargs.setdefault("env", {})
    return parse_corefile(text, **kwargs)


def gateway(text: str, **kwargs) -> GatewayConfig:
    (server,) = parse(text, **kwargs).servers
    assert server.gateway is not None
    return server.gateway


def option(text: str) -> GatewayConfig:
    """A k8s_gateway block with one option line (on line 3) in zone example.org."""
    return gateway(f"example.org {{\n  k8s_gateway {{\n    {text}\n  }}\n}}\n")


def test_public_api() -> None:
    public = {name for name in dir(k8sgw.config) if not name.startswith("_")}
    modules = {"directives", "dnsplugins", "lexer", "models", "ops", "parser", "registry", "transfer", "annotations", "os", "Mapping"}
    assert set(k8sgw.config.__all__) == public - modules
    assert SUPPORTED_DIRECTIVES[:2] == ("bind", "k8s_gateway")
    assert SUPPORTED_RESOURCES == (
        "HTTPRoute", "TLSRoute", "GRPCRoute", "TCPRoute", "UDPRoute", "Ingress",
        "IngressRoute", "IngressRouteTCP", "VirtualService", "IstioGateway", "Service", "DNSEndpoint", "Node",
    )


# The Corefile from k8s_gateway's README/Helm chart, minus the directives k8sgw lacks.
README_COREFILE = """\
.:53 {
    k8s_gateway example.com {
      resources Ingress Service
    }
}
"""


def test_readme_corefile() -> None:
    cfg = parse(README_COREFILE)
    assert cfg == Config(
        filename="Corefile",
        servers=(
            ServerBlock(
                keys=(ServerKey(zone=".", port=53),),
                gateway=GatewayConfig(zones=("example.com.",), resources=("Ingress", "Service"), line=2),
                line=1,
            ),
        ),
    )


def test_readme_minimal_example() -> None:
    (server,) = parse(". {\n  k8s_gateway example.com\n}\n").servers
    assert server.gateway == GatewayConfig(zones=("example.com.",), line=2)


def test_defaults() -> None:
    (server,) = parse("example.org {\n  k8s_gateway\n}").servers
    assert server.bind == ()
    assert server.zones == ("example.org.",)
    gw = server.gateway
    assert gw is not None
    assert gw.zones == ("example.org.",)
    assert gw.resources == (  # Nodes, Traefik and Istio only when asked
        "HTTPRoute", "TLSRoute", "GRPCRoute", "TCPRoute", "UDPRoute", "Ingress", "Service", "DNSEndpoint"
    )
    assert (gw.ttl, gw.apex, gw.secondary, gw.kubeconfig, gw.fallthrough) == (
        60,
        "dns1.kube-system",
        None,
        None,
        None,
    )
    assert (gw.ingress_classes, gw.gateway_classes, gw.service_label_selectors) == ((), (), ())


def test_block_without_gateway() -> None:
    (server,) = parse("example.org {\n}").servers
    assert server.gateway is None


def test_full_design_corefile(tmp_path: Path) -> None:
    corefile = tmp_path / "Corefile"
    corefile.write_text(
        """\
.:1053 {
    bind 192.0.2.1
    k8s_gateway example.com {
        resources Ingress Service
        ttl 30
        apex exdns-k8s-gateway.kube-system
        secondary exdns-2-k8s-gateway.kube-system
        kubeconfig kube/config admin@cluster
        fallthrough sub.example.com
        ingressClasses nginx
        gatewayClasses example
        serviceLabelSelectors "app=web"
    }
}
"""
    )
    cfg = load(corefile, default_port=5353)
    assert cfg.filename == str(corefile)
    (server,) = cfg.servers
    assert server.keys == (ServerKey(zone=".", port=1053),)
    assert server.bind == ("192.0.2.1",)
    assert server.gateway == GatewayConfig(
        zones=("example.com.",),
        resources=("Ingress", "Service"),
        ttl=30,
        apex="exdns-k8s-gateway.kube-system",
        secondary="exdns-2-k8s-gateway.kube-system",
        kubeconfig=KubeconfigRef(path=str(tmp_path / "kube" / "config"), context="admin@cluster"),
        fallthrough=("sub.example.com.",),
        ingress_classes=("nginx",),
        gateway_classes=("example",),
        service_label_selectors=("app=web",),
        line=3,
    )


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (".", [(".", 53)]),
        (".:1053", [(".", 1053)]),
        ("example.org", [("example.org.", 53)]),
        ("Example.ORG.", [("example.org.", 53)]),
        ("dns://example.org:5300", [("example.org.", 5300)]),
        ("DNS://.:1", [(".", 1)]),
        ("example.org:65535", [("example.org.", 65535)]),
        ("example.org:0", [("example.org.", 0)]),  # any free port: tests and k8sgw-dev
        ("a.example b.example:54", [("a.example.", 53), ("b.example.", 54)]),
        ("a.example, b.example", [("a.example.", 53), ("b.example.", 53)]),
        ("example.org:53 example.org:54", [("example.org.", 53), ("example.org.", 54)]),
        ("_tcp.example.org", [("_tcp.example.org.", 53)]),
        ("bücher.example", [("xn--bcher-kva.example.", 53)]),
    ],
)
def test_server_keys(keys: str, expected: list[tuple[str, int]]) -> None:
    (server,) = parse(f"{keys} {{\n}}").servers
    assert [(k.zone, k.port) for k in server.keys] == expected


@pytest.mark.parametrize("port", [0, 1053])
def test_default_port_is_dns_port_flag(port: int) -> None:
    (server,) = parse("example.org example.net:53 {\n}", default_port=port).servers
    assert [k.port for k in server.keys] == [port, 53]


def test_zones_are_distinct_in_order() -> None:
    (server,) = parse("b.example:53 a.example b.example:54 {\n}").servers
    assert server.zones == ("b.example.", "a.example.")


def test_several_blocks() -> None:
    cfg = parse(
        """\
# public zone
example.org {
    k8s_gateway
}

# same zone on another port, and another zone
example.org:5353 example.net {  # trailing comment
    bind 127.0.0.1
    k8s_gateway example.net
}
"""
    )
    assert [(s.line, s.zones) for s in cfg.servers] == [
        (2, ("example.org.",)),
        (7, ("example.org.", "example.net.")),
    ]
    assert cfg.servers[1].gateway is not None
    assert (cfg.servers[1].gateway.zones, cfg.servers[1].gateway.line) == (("example.net.",), 9)


def test_sole_block_without_braces() -> None:
    (server,) = parse("example.org:1053\nk8s_gateway\n").servers
    assert server.keys == (ServerKey(zone="example.org.", port=1053),)
    assert server.gateway is not None


def test_env_placeholders() -> None:
    env = {"ZONE": "example.org", "PORT": "1053", "TTL": "7", "SEL": "app=web"}
    cfg = parse(
        '{$ZONE}:{$PORT} {\n  k8s_gateway {\n    ttl {%TTL%}\n    serviceLabelSelectors "{$SEL}"\n  }\n}',
        env=env,
    )
    (server,) = cfg.servers
    assert server.keys == (ServerKey(zone="example.org.", port=1053),)
    assert server.gateway is not None
    assert (server.gateway.ttl, server.gateway.service_label_selectors) == (7, ("app=web",))


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K8SGW_TEST_ZONE", "example.org")
    (server,) = parse_corefile("{$K8SGW_TEST_ZONE} {\n}").servers
    assert server.zones == ("example.org.",)


def test_missing_env_is_empty() -> None:
    (server,) = parse("example.org{$NOPE} {\n}").servers
    assert server.zones == ("example.org.",)


def test_bind_accumulates() -> None:
    (server,) = parse(". {\n  bind 192.0.2.1 2001:DB8::1\n  bind 192.0.2.2 192.0.2.1\n}").servers
    assert server.bind == ("192.0.2.1", "2001:db8::1", "192.0.2.2")


@pytest.mark.parametrize(
    ("args", "zones"),
    [
        ("", ("example.org.", "example.net.")),
        ("example.org", ("example.org.",)),
        ("Sub.Example.ORG. example.net", ("sub.example.org.", "example.net.")),
        ("example.org example.org.", ("example.org.",)),
    ],
)
def test_gateway_zones(args: str, zones: tuple[str, ...]) -> None:
    assert gateway(f"example.org example.net:54 {{\n  k8s_gateway {args}\n}}").zones == zones


def test_gateway_zone_under_root_block() -> None:
    assert gateway(". {\n  k8s_gateway example.org\n}").zones == ("example.org.",)


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        ("resources Ingress", "resources", ("Ingress",)),
        ("resources service INGRESS", "resources", ("Ingress", "Service")),
        ("resources Service Service", "resources", ("Service",)),
        ("resources dnsendpoint Service httproute", "resources", ("HTTPRoute", "Service", "DNSEndpoint")),
        ("resources TLSRoute GRPCRoute", "resources", ("TLSRoute", "GRPCRoute")),
        ("ttl 0", "ttl", 0),
        ("ttl 3600", "ttl", 3600),
        ("ttl 007", "ttl", 7),
        ("apex ns", "apex", "ns"),
        ("apex Exdns.Kube-System", "apex", "exdns.kube-system"),
        ("apex a.b.c", "apex", "a.b.c"),
        ("secondary dns2.kube-system", "secondary", "dns2.kube-system"),
        ("kubeconfig /etc/kube.conf", "kubeconfig", KubeconfigRef(path="/etc/kube.conf")),
        (
            "kubeconfig /etc/kube.conf prod",
            "kubeconfig",
            KubeconfigRef(path="/etc/kube.conf", context="prod"),
        ),
        ("fallthrough", "fallthrough", ()),
        ("fallthrough example.org", "fallthrough", ()),
        ("fallthrough .", "fallthrough", ()),
        ("fallthrough a.example.org b.example.org", "fallthrough", ("a.example.org.", "b.example.org.")),
        ("ingressClasses nginx", "ingress_classes", ("nginx",)),
        ("ingressClasses nginx traefik nginx", "ingress_classes", ("nginx", "traefik")),
        ("gatewayClasses cilium istio.io", "gateway_classes", ("cilium", "istio.io")),
        ("serviceLabelSelectors app=web", "service_label_selectors", ("app=web",)),
        (
            'serviceLabelSelectors "app=web" "tier in (a,b)"',
            "service_label_selectors",
            ("app=web", "tier in (a,b)"),
        ),
        (
            'serviceLabelSelectors "a==b,c!=d, e notin (x, y),f,!g,example.com/h=,i>3"',
            "service_label_selectors",
            ("a==b,c!=d, e notin (x, y),f,!g,example.com/h=,i>3",),
        ),
    ],
)
def test_options(line: str, field: str, value: object) -> None:
    assert getattr(option(line), field) == value


def test_kubeconfig_relative_to_corefile_directory(tmp_path: Path) -> None:
    gw = gateway(". {\n  k8s_gateway {\n    kubeconfig kc.yaml\n  }\n}", filename=str(tmp_path / "Corefile"))
    assert gw.kubeconfig == KubeconfigRef(path=str(tmp_path / "kc.yaml"))
    gw = gateway(". {\n  k8s_gateway {\n    kubeconfig kc.yaml\n  }\n}")
    assert gw.kubeconfig == KubeconfigRef(path=os.path.abspath("kc.yaml"))


def test_fallthrough_across_several_zones() -> None:
    gw = gateway("a.example b.example c.example {\n  k8s_gateway {\n    fallthrough . \n  }\n}")
    assert gw.fallthrough == ()
    gw = gateway("a.example b.example {\n  k8s_gateway {\n    fallthrough x.a.example\n  }\n}")
    assert gw.fallthrough == ("x.a.example.",)
    gw = gateway("a.example b.other {\n  k8s_gateway {\n    fallthrough example\n  }\n}")
    assert gw.fallthrough == ("a.example.",)


def test_models_are_frozen() -> None:
    gw = option("ttl 5")
    with pytest.raises(ValueError):
        gw.ttl = 6  # type: ignore[misc]
    assert isinstance(gw.zones, tuple) and hash(gw)


# ---- errors: every one names the file and the line --------------------------------------

ERRORS = [
    # keys
    ("example.org:65536 {\n}", 1, 'expected a port from 0 to 65535 after ":", got "65536"'),
    ("example.org:-1 {\n}", 1, 'got "-1"'),
    ("example.org:abc {\n}", 1, 'got "abc"'),
    ("example.org: {\n}", 1, 'got ""'),
    (":53 {\n}", 1, 'expected ZONE[:PORT] (use "." for every zone)'),
    ("exa$mple.org {\n}", 1, 'expected a DNS name like "example.com", got "exa$mple.org"'),
    ("a..b {\n}", 1, "expected a DNS name"),
    ("@ {\n}", 1, "expected a DNS name"),
    ("*.example.org {\n}", 1, "expected a DNS name"),
    ("\n\ntls://example.org {\n}", 3, "transport tls:// is not supported"),
    ("10.0.0.0/8 {\n}", 1, "CIDR are not supported"),
    ("example.org {\n}\nEXAMPLE.org:53 {\n}", 3, "example.org.:53 is served twice (also on line 1)"),
    ("example.org example.org. {\n}", 1, "example.org.:53 is served twice (also on line 1)"),
    ("example.org {\n}\nexample.org {\n}", 3, "served twice"),
    # directives
    (". {\n  rewrite name a b\n}", 2, 'directive "rewrite" is not supported by k8sgw (supported: bind, k8s_gateway, '),
    (". {\n  template IN A x\n}", 2, 'directive "template" is not supported by k8sgw'),
    (". {\n  k8s_gateway\n  hosts /etc/hosts\n}", 3, 'directive "hosts" is not supported'),
    (". {\n\n  dnssec { key file x }\n}", 3, 'directive "dnssec" is not supported'),
    (". {\n  kubernetes cluster.local\n}", 2, 'directive "kubernetes" is not supported'),
    (". {\n  foo\n}", 2, 'unknown directive "foo" (supported: bind, k8s_gateway, '),
    (". {\n  K8S_GATEWAY\n}", 2, 'unknown directive "K8S_GATEWAY"'),
    # bind
    (". {\n  bind\n}", 2, "bind: expected one or more IP addresses"),
    (". {\n  bind 127.0.0.1\n    eth0\n}", 3, 'unknown directive "eth0"'),
    (". {\n  bind 127.0.0.1 eth0\n}", 2, 'bind: expected an IP address, got "eth0"'),
    (". {\n  bind 127.0.0.1 {\n    except 127.0.0.1\n  }\n}", 2, "bind: does not take a block"),
    # k8s_gateway
    (". {\n  k8s_gateway\n  k8s_gateway\n}", 3, "only one per server block (the first is on line 2)"),
    (
        "example.org {\n  k8s_gateway example.net\n}",
        2,
        'k8s_gateway: zone "example.net." is not inside the server block\'s zones (example.org.)',
    ),
    ("example.org {\n  k8s_gateway org\n}", 2, "is not inside the server block's zones"),
    (
        "example.org {\n  k8s_gateway exa!mple.org\n}",
        2,
        'k8s_gateway: expected a DNS name like "example.com"',
    ),
    (
        ". {\n  k8s_gateway {\n    foo bar\n  }\n}",
        3,
        'k8s_gateway: unknown option "foo" (expected one of: resources,',
    ),
    (". {\n  k8s_gateway {\n    ingressclasses a\n  }\n}", 3, 'did you mean "ingressClasses"?'),
    (". {\n  k8s_gateway {\n    ttl 5\n    ttl 6\n  }\n}", 4, "ttl: given twice (first on line 3)"),
    (". {\n  k8s_gateway {\n    ttl 5 {\n    }\n  }\n}", 3, "ttl: does not take a block"),
    # resources
    (
        ". {\n  k8s_gateway {\n    resources\n  }\n}",
        3,
        "resources: expected one or more kinds (HTTPRoute, TLSRoute, GRPCRoute, TCPRoute, UDPRoute, Ingress, IngressRoute, IngressRouteTCP, VirtualService, IstioGateway, Service, DNSEndpoint, Node), got 0",
    ),
    (
        ". {\n  k8s_gateway {\n    resources Ingress Pod\n  }\n}",
        3,
        'resources: unknown kind "Pod" (supported: HTTPRoute, TLSRoute, GRPCRoute, TCPRoute, UDPRoute, Ingress, IngressRoute, IngressRouteTCP, VirtualService, IstioGateway, Service, DNSEndpoint, Node)',
    ),
    (
        ". {\n  k8s_gateway {\n    resources Ingress\n      httproute\n  }\n}",
        4,
        'unknown option "httproute"',
    ),
    # ttl
    (
        ". {\n  k8s_gateway {\n    ttl\n  }\n}",
        3,
        "ttl: expected 1 argument (seconds from 0 to 3600), got 0 arguments",
    ),
    (". {\n  k8s_gateway {\n    ttl 1 2\n  }\n}", 3, "got 2 arguments"),
    (
        ". {\n  k8s_gateway {\n\n\n\n    ttl abc\n  }\n}",
        6,
        'ttl: expected an integer from 0 to 3600, got "abc"',
    ),
    (". {\n  k8s_gateway {\n    ttl 3601\n  }\n}", 3, 'got "3601"'),
    (". {\n  k8s_gateway {\n    ttl -1\n  }\n}", 3, 'got "-1"'),
    (". {\n  k8s_gateway {\n    ttl +5\n  }\n}", 3, 'got "+5"'),
    (". {\n  k8s_gateway {\n    ttl ٣\n  }\n}", 3, 'got "٣"'),
    # apex / secondary
    (". {\n  k8s_gateway {\n    apex\n  }\n}", 3, "apex: expected 1 argument"),
    (". {\n  k8s_gateway {\n    apex a b\n  }\n}", 3, "apex: expected 1 argument"),
    (". {\n  k8s_gateway {\n    apex dns1.kube-system.\n  }\n}", 3, "without the trailing dot"),
    (
        ". {\n  k8s_gateway {\n    apex a..b\n  }\n}",
        3,
        'apex: expected a relative DNS name like "dns1.kube-system"',
    ),
    (". {\n  k8s_gateway {\n    apex .\n  }\n}", 3, "apex: expected a relative DNS name"),
    ('. {\n  k8s_gateway {\n    apex ""\n  }\n}', 3, "apex: expected a relative DNS name"),
    (". {\n  k8s_gateway {\n    secondary a/b\n  }\n}", 3, "secondary: expected a relative DNS name"),
    # kubeconfig
    (
        ". {\n  k8s_gateway {\n    kubeconfig\n  }\n}",
        3,
        "kubeconfig: expected FILE [CONTEXT], got 0 arguments",
    ),
    (". {\n  k8s_gateway {\n    kubeconfig a b c\n  }\n}", 3, "got 3 arguments"),
    ('. {\n  k8s_gateway {\n    kubeconfig ""\n  }\n}', 3, "got an empty argument"),
    # fallthrough
    (
        "example.org {\n  k8s_gateway {\n    fallthrough example.net\n  }\n}",
        3,
        'fallthrough: zone "example.net." is not inside the k8s_gateway zones (example.org.)',
    ),
    (". {\n  k8s_gateway {\n    fallthrough -\n  }\n}", 3, "fallthrough: expected a DNS name"),
    (". {\n  k8s_gateway {\n    fallthrough a.-b.org\n  }\n}", 3, "fallthrough: expected a DNS name"),
    (". {\n  k8s_gateway {\n    apex ns-\n  }\n}", 3, "apex: expected a relative DNS name"),
    ("a" * 64 + ".org {\n}", 1, "expected a DNS name"),
    # classes
    (
        ". {\n  k8s_gateway {\n    ingressClasses\n  }\n}",
        3,
        "ingressClasses: expected one or more class names",
    ),
    (". {\n  k8s_gateway {\n    ingressClasses Nginx\n  }\n}", 3, 'got "Nginx"'),
    (
        ". {\n  k8s_gateway {\n    gatewayClasses a_b\n  }\n}",
        3,
        "gatewayClasses: expected a Kubernetes object name",
    ),
    # serviceLabelSelectors
    (
        ". {\n  k8s_gateway {\n    serviceLabelSelectors\n  }\n}",
        3,
        "serviceLabelSelectors: expected one or more",
    ),
    *[
        (f'. {{\n  k8s_gateway {{\n    serviceLabelSelectors "{sel}"\n  }}\n}}', 3, "invalid label selector")
        for sel in [
            "",
            "app=web,",
            "a b",
            "a in ()",
            "a in (x",
            "a = b c",
            "=b",
            "a=-x",
            "!",
            "a notin x",
            "a>b",
        ]
    ],
    # file structure (more in test_parser.py)
    ("", 1, "no server blocks"),
    (". {\n  k8s_gateway {\n    ttl 5\n", 2, "'{' is never closed"),
    ('. {\n  k8s_gateway {\n    apex "dns\n', 3, "unterminated quoted string"),
    (". {\n  k8s_gateway {\n    kubeconfig /a/one.yaml\n    kubeconfig /b/one.yaml\n  }\n}", 4,
     'kubeconfig: a second cluster named "one"; give each kubeconfig line its own CONTEXT'),
    (". {\n  k8s_gateway {\n    kubeconfig /a/one.yaml ctx\n    kubeconfig /b/two.yaml ctx\n  }\n}", 4,
     'a second cluster named "ctx"'),
    (". {\n  k8s_gateway {\n    traefikService traefik\n  }\n}", 3, 'traefikService: expected NAMESPACE/NAME like "traefik/traefik", got "traefik"'),
    (". {\n  k8s_gateway {\n    traefikService a/b/c\n  }\n}", 3, "traefikService: expected NAMESPACE/NAME"),
    (". {\n  k8s_gateway {\n    traefikService Traefik/traefik\n  }\n}", 3, "traefikService: expected NAMESPACE/NAME"),
    (". {\n  k8s_gateway {\n    traefikService\n  }\n}", 3, "traefikService: expected 1 argument"),
]


def test_traefik_service_and_opt_in_kinds() -> None:
    gw = gateway(". {\n  k8s_gateway {\n    resources ingressroute IstioGateway\n    traefikService traefik/traefik\n  }\n}")
    assert gw.resources == ("IngressRoute", "IstioGateway")
    assert gw.traefik_service == "traefik/traefik"
    assert gateway(". {\n  k8s_gateway\n}").traefik_service is None


@pytest.mark.parametrize(("text", "line", "message"), ERRORS)
def test_errors(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text, filename="conf/Corefile.test")
    err = info.value
    assert str(err).startswith(f"conf/Corefile.test:{line}: ")
    assert message in str(err)
    assert (err.filename, err.line) == ("conf/Corefile.test", line)


@pytest.mark.parametrize("port", [65536, -1])
def test_bad_default_port(port: int) -> None:
    with pytest.raises(ConfigError, match="default DNS port"):
        parse(". {\n}", default_port=port)


def test_load_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "Corefile"
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: cannot read Corefile")
    assert info.value.filename == str(path)


def test_load_directory_and_binary(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read Corefile"):
        load(tmp_path)
    binary = tmp_path / "Corefile"
    binary.write_bytes(b"\xff\xfe. {\n}")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(binary)


def test_load_reports_lines_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "Corefile"
    path.write_text(". {\n  rewrite name a b\n}\n")
    with pytest.raises(ConfigError) as info:
        load(str(path))
    assert str(info.value).startswith(f'{path}:2: directive "rewrite" is not supported by k8sgw (supported: ')


def test_an_unset_variable_in_a_server_block_key_is_named():
    for text, names in (
        ("{$ZONE}:53 {\n k8s_gateway\n}\n", "environment variable ZONE is not set"),
        ("{$ZONE} {\n k8s_gateway\n}\n", "environment variable ZONE is not set"),
        ("{$ZONE}.org:{%PORT%} {\n k8s_gateway\n}\n", "environment variables PORT, ZONE are not set"),
    ):
        with pytest.raises(ConfigError) as caught:
            parse_corefile(text, env={})
        assert names in str(caught.value) and ":1:" in str(caught.value)
    assert parse_corefile("{$ZONE}:53 {\n k8s_gateway\n}\n", env={"ZONE": "foo.org"}).servers[0].zones == ("foo.org.",)


def test_snippets_and_import_are_named_as_unsupported():
    for text, line in (
        ("(common) {\n log\n}\nfoo.org {\n import common\n}\n", 1),
        ("foo.org {\n log\n import common\n}\n", 3),
        ("import other.conf\nfoo.org {\n log\n}\n", 1),
    ):
        with pytest.raises(ConfigError) as caught:
            parse_corefile(text, env={})
        assert f"Corefile:{line}:" in str(caught.value)
        assert "import are not supported by k8sgw" in str(caught.value)


def test_an_error_never_echoes_a_huge_token():
    for text in (
        "foo.org {\n k8s_gateway {\n  ttl " + "x" * 50_000 + "\n }\n}\n",
        "y" * 50_000 + " {\n}\n",
        "foo.org {\n " + "z" * 50_000 + "\n}\n",
    ):
        with pytest.raises(ConfigError) as caught:
            parse_corefile(text, env={})
        assert len(str(caught.value)) < 1000 and "(50000 characters)" in str(caught.value)


def test_several_kubeconfig_lines_are_several_clusters() -> None:
    gw = gateway(". {\n  k8s_gateway {\n    kubeconfig /k/east.yaml\n    kubeconfig /k/west.yaml prod\n  }\n}")
    assert [(c.path, c.context, c.cluster) for c in gw.clusters] == [
        ("/k/east.yaml", None, "east"), ("/k/west.yaml", "prod", "prod")
    ]
    assert gw.kubeconfig == gw.clusters[0]
    one = gateway(". {\n  k8s_gateway {\n    kubeconfig /k/east.yaml\n  }\n}")
    assert one.clusters == () and one.kubeconfig.cluster == "east"
    assert gateway(". {\n  k8s_gateway\n}").clusters == ()
