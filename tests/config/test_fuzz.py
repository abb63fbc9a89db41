"""Whatever the text, parse_corefile returns a Config or raises ConfigError."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from k8sgw.config import Config, ConfigError, parse_corefile

# fmt: off
WORDS = [
    "{", "}", "\n", " ", "\t", "#", '"', "\\", ",", ":", ".", "..", "{$", "{%", "%}", "$", "@", "*",
    ".:53", "example.org", "example.org:1053", "dns://", "tls://", "10.0.0.0/8", "0", "65536",
    "bind", "127.0.0.1", "::1", "k8s_gateway", "resources", "Ingress", "service", "HTTPRoute",
    "ttl", "30", "-1", "apex", "secondary", "a.b", "kubeconfig", "fallthrough", "ingressClasses",
    "gatewayClasses", "serviceLabelSelectors", "app=web", "in", "(a,b)", "!x", "log", "ü", "\x00",
]
# fmt: on


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(WORDS) | st.text(max_size=5), max_size=40).map("".join))
def test_corefile_like_text(text: str) -> None:
    try:
        cfg = parse_corefile(text, env={"X": "{", "E": "example.org"})
    except ConfigError as err:
        assert err.filename == "Corefile" and err.line is not None and err.line >= 1
    else:
        assert isinstance(cfg, Config) and cfg.servers


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    try:
        parse_corefile(text, env={})
    except ConfigError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30), st.text(max_size=30))
def test_arbitrary_key_and_option(key: str, value: str) -> None:
    quoted_value = value.replace("\\", "\\\\").replace('"', '\\"')
    for text in (
        f"{key} {{\n}}",
        f'. {{\n  k8s_gateway {{\n    ttl "{quoted_value}"\n  }}\n}}',
        f'. {{\n  k8s_gateway "{quoted_value}"\n}}',
        f'. {{\n  k8s_gateway {{\n    serviceLabelSelectors "{quoted_value}"\n  }}\n}}',
        f'. {{\n  k8s_gateway {{\n    fallthrough "{quoted_value}"\n  }}\n}}',
        f'. {{\n  bind "{quoted_value}"\n}}',
    ):
        try:
            parse_corefile(text, env={})
        except ConfigError:
            pass
