"""transfer and tsig: CoreDNS syntax in, frozen models out, file:line errors."""

from __future__ import annotations

import base64

import dns.rdatatype
import pytest

from k8sgw.config import parse_corefile
from k8sgw.errors import ConfigError

B64 = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def block(body: str, tmp_path=None, gateway: str = "k8s_gateway example.org"):
    filename = str(tmp_path / "Corefile") if tmp_path else "Corefile"
    (server,) = parse_corefile(f"example.org:1053 {{\n{gateway}\n{body}\n}}\n", filename=filename).servers
    return server


def test_transfer_entries_acl_and_notify_targets():
    t = block("transfer {\n to * 10.0.0.0/8 192.0.2.1\n to 192.0.2.2:5353 [2001:db8::1]:53 2001:db8::2 192.0.2.0/32\n}").transfer
    assert t.to == ("*", "10.0.0.0/8", "192.0.2.1", "192.0.2.2:5353", "[2001:db8::1]:53", "2001:db8::2", "192.0.2.0/32")
    assert t.notify_targets() == (
        ("192.0.2.1", 53), ("192.0.2.2", 5353), ("2001:db8::1", 53), ("2001:db8::2", 53), ("192.0.2.0", 53),
    )
    assert (t.zones, t.journal_versions, t.journal_bytes, t.line) == ((), 1000, 16 * 2**20, 3)
    narrow = block("transfer example.org {\n to 10.1.0.0/16 192.0.2.9:53\n journal 50 2M\n}").transfer
    assert narrow.zones == ("example.org.",) and (narrow.journal_versions, narrow.journal_bytes) == (50, 2 * 2**20)
    assert narrow.permits("10.1.2.3") and narrow.permits("::ffff:10.1.2.3") and narrow.permits("192.0.2.9")
    assert not narrow.permits("10.2.0.1") and not narrow.permits("192.0.2.10") and not narrow.permits("garbage")
    assert t.permits("203.0.113.5")  # *


def test_tsig_secrets_inline_and_from_a_bind_file(tmp_path):
    (tmp_path / "keys.conf").write_text(
        f'# made with tsig-keygen\nkey "From-File." {{\n  algorithm HMAC-SHA512;\n  secret "{B64}";\n}};\n'
        f'/* another */ key second {{ secret "{B64}"; }}; // no algorithm\n'
    )
    t = block(f"tsig {{\n secret xfr {B64}\n secrets keys.conf\n require AXFR ixfr\n}}", tmp_path).tsig
    assert [(s.name, s.algorithm) for s in t.secrets] == [
        ("xfr.", None), ("from-file.", "hmac-sha512."), ("second.", None),
    ]
    assert t.requires(dns.rdatatype.AXFR) and t.requires(dns.rdatatype.IXFR) and not t.requires(dns.rdatatype.A)
    assert block(f"tsig {{\n secret k {B64}\n require\n}}").tsig.require_all  # CoreDNS: require alone = all
    assert block(f"tsig {{\n secret k {B64}\n require all\n}}").tsig.requires(dns.rdatatype.A)
    none = block(f"tsig {{\n secret k {B64}\n require none\n}}").tsig
    assert not none.requires(dns.rdatatype.AXFR) and not block(f"tsig {{\n secret k {B64}\n}}").tsig.require_all


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("transfer", 3, "at least one `to"),
        ("transfer {\n to 300.1.1.1\n}", 4, 'got "300.1.1.1"'),
        ("transfer {\n to foo\n}", 4, 'got "foo"'),
        ("transfer {\n to 192.0.2.1:0\n}", 4, 'got "192.0.2.1:0"'),
        ("transfer {\n to *\n nope 1\n}", 5, 'unknown option "nope"'),
        ("transfer {\n to *\n journal 10X\n}", 5, "whole number"),
        ("transfer other.org {\n to *\n}", 3, "other.org. is not a zone of this block's k8s_gateway"),
        ("tsig {\n require AXFR\n}", 3, "at least one `secret"),
        ("tsig {\n secret k notbase64!\n}", 4, "not base64"),
        (f"tsig {{\n secret k {B64}\n secret K. {B64}\n}}", 3, "k. is defined twice"),
        (f"tsig {{\n secret k {B64}\n require BOGUS\n}}", 5, 'got "BOGUS"'),
    ],
)
def test_errors_name_the_line(body, line, message):
    with pytest.raises(ConfigError) as err:
        block(body)
    assert f"Corefile:{line}:" in str(err.value) and message in str(err.value)


def test_transfer_needs_k8s_gateway_and_the_secrets_file_names_its_line(tmp_path):
    with pytest.raises(ConfigError, match="needs a k8s_gateway"):
        block("transfer {\n to *\n}", gateway="")
    (tmp_path / "keys.conf").write_text(f'key "a." {{\n  algorithm hmac-md5;\n  secret "{B64}";\n}};\n')
    with pytest.raises(ConfigError) as err:
        block("tsig {\n secrets keys.conf\n}", tmp_path)
    assert "keys.conf:1:" in str(err.value) and 'algorithm "hmac-md5"' in str(err.value)
    (tmp_path / "keys.conf").write_text('key "a." {\n  secret "x"\n}\n')
    with pytest.raises(ConfigError) as err:
        block("tsig {\n secrets keys.conf\n}", tmp_path)
    assert "keys.conf:3:" in str(err.value) and 'expected ";"' in str(err.value)
    with pytest.raises(ConfigError, match="cannot read"):
        block("tsig {\n secrets missing.conf\n}", tmp_path)
