"""Nodes: `<name>.<zone>` → the addresses of the nodeAddressType; the Corefile option."""

from __future__ import annotations

import logging

import dns.name
import pytest

from k8sgw.config import ConfigError, parse_corefile
from k8sgw.kubeapi.models import Node
from k8sgw.records.sources import Scope, translate
from tests.records.test_sources import texts

ZONES = (dns.name.from_text("example.org."), dns.name.from_text("example.com."))
ADDRESSES = [
    {"type": "InternalIP", "address": "10.0.0.7"},
    {"type": "InternalIP", "address": "fd00::7"},
    {"type": "ExternalIP", "address": "192.0.2.7"},
    {"type": "Hostname", "address": "worker-1"},
]


def node(name="worker-1", addresses=ADDRESSES, labels=None):
    return Node.model_validate(
        {"metadata": {"name": name, "labels": labels or {}}, "status": {"addresses": addresses}}
    )


@pytest.mark.parametrize(
    ("address_type", "expected"),
    [
        ("InternalIP", [
            "worker-1.example.com. - A 10.0.0.7", "worker-1.example.com. - AAAA fd00::7",
            "worker-1.example.org. - A 10.0.0.7", "worker-1.example.org. - AAAA fd00::7",
        ]),
        ("ExternalIP", ["worker-1.example.com. - A 192.0.2.7", "worker-1.example.org. - A 192.0.2.7"]),
    ],
)
def test_node_named_in_each_zone_with_addresses_of_the_type(address_type, expected):
    assert texts(translate("Node", node(), Scope(ZONES, node_address_type=address_type))) == expected


def test_dotted_node_name_ignore_label_and_bad_input(caplog):
    caplog.set_level(logging.WARNING)
    scope = Scope(ZONES[:1])
    dotted = node("ip-10-0-0-7.ec2.internal", [{"type": "InternalIP", "address": "10.0.0.7"}])
    assert texts(translate("Node", dotted, scope)) == ["ip-10-0-0-7.ec2.internal.example.org. - A 10.0.0.7"]
    assert translate("Node", node(labels={"k8s-gateway.dns/ignore": "true"}), scope) == ()
    assert translate("Node", node(addresses=[{"type": "ExternalIP", "address": "192.0.2.7"}]), scope) == ()
    bad = node(addresses=[{"type": "InternalIP", "address": "10.0.0.300"}, {"type": "InternalIP", "address": "10.0.0.8"}])
    assert texts(translate("Node", bad, scope)) == ["worker-1.example.org. - A 10.0.0.8"]
    assert "Node /worker-1" in caplog.text and "10.0.0.300" in caplog.text
    assert translate("Node", node("bad_name"), scope) == ()
    assert "'bad_name'" in caplog.text


def test_node_address_type_option_and_default_resources():
    text = ". {{\n k8s_gateway example.org {{\n  {}\n }}\n}}\n"
    default = parse_corefile(text.format(""), filename="x").servers[0].gateway
    assert default.node_address_type == "InternalIP" and "Node" not in default.resources
    chosen = parse_corefile(text.format("nodeAddressType externalip\n  resources Node"), filename="x").servers[0].gateway
    assert (chosen.node_address_type, chosen.resources) == ("ExternalIP", ("Node",))
    with pytest.raises(ConfigError, match='nodeAddressType: expected InternalIP or ExternalIP, got "Hostname"'):
        parse_corefile(text.format("nodeAddressType Hostname"), filename="x")
