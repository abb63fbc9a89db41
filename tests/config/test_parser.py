"""Corefile structure: server blocks, keys, directives and nested blocks."""

from __future__ import annotations

import pytest

from k8sgw.config.lexer import tokenize
from k8sgw.config.parser import MAX_NESTING, Directive, RawServerBlock, parse_tokens
from k8sgw.errors import ConfigError


def parse(text: str) -> tuple[RawServerBlock, ...]:
    return parse_tokens(tokenize(text, filename="Corefile", env={}), filename="Corefile")


def shape(d: Directive) -> tuple:
    children = None if d.children is None else tuple(shape(c) for c in d.children)
    return (d.name, tuple(a.text for a in d.args), children, d.line)


def keys(block: RawServerBlock) -> list[tuple[str, int]]:
    return [(k.text, k.line) for k in block.keys]


def test_blocks_keys_and_directives() -> None:
    (a, b) = parse(
        """\
.:1053 example.org {
    bind 127.0.0.1
    k8s_gateway example.org {
        ttl 30
        resources Ingress
    }
}

example.net:53 { }
"""
    )
    assert keys(a) == [(".:1053", 1), ("example.org", 1)]
    assert a.line == 1
    assert [shape(d) for d in a.directives] == [
        ("bind", ("127.0.0.1",), None, 2),
        (
            "k8s_gateway",
            ("example.org",),
            (("ttl", ("30",), None, 4), ("resources", ("Ingress",), None, 5)),
            3,
        ),
    ]
    assert keys(b) == [("example.net:53", 9)] and b.directives == () and b.line == 9


@pytest.mark.parametrize(
    "text",
    [
        "a.org, b.org {\n}",
        "a.org,b.org {\n}",
        "a.org,\nb.org {\n}",
        "a.org ,b.org {\n}",
        "a.org\n{\n}",
    ],
)
def test_key_lists(text: str) -> None:
    (block,) = parse(text)
    assert [k.text for k in block.keys] == (["a.org"] if "b.org" not in text else ["a.org", "b.org"])


def test_one_line_blocks_and_brace_on_next_line() -> None:
    (block,) = parse(". { k8s_gateway example.org { ttl 5 } }\n")
    assert [shape(d) for d in block.directives] == [
        ("k8s_gateway", ("example.org",), (("ttl", ("5",), None, 1),), 1)
    ]
    (block,) = parse(". {\nk8s_gateway\n{\nttl 5\n}\n}")
    assert [shape(d) for d in block.directives] == [("k8s_gateway", (), (("ttl", ("5",), None, 4),), 2)]


def test_sole_block_without_braces() -> None:
    (block,) = parse("example.org\nbind ::1\nk8s_gateway\n")
    assert keys(block) == [("example.org", 1)]
    assert [d.name for d in block.directives] == ["bind", "k8s_gateway"]


def test_multiline_quoted_argument_stays_on_its_directive() -> None:
    (block,) = parse('. {\n  x "a\nb" c\n  y\n}')
    assert [shape(d) for d in block.directives] == [("x", ("a\nb", "c"), None, 2), ("y", (), None, 4)]


def test_quoted_braces_are_arguments() -> None:
    (block,) = parse('. {\n  x "{" "}"\n}')
    assert [shape(d) for d in block.directives] == [("x", ("{", "}"), None, 2)]


def test_empty_block_is_not_none() -> None:
    (block,) = parse(". {\n  k8s_gateway {\n  }\n}")
    assert block.directives[0].children == ()


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "no server blocks"),
        ("# just a comment\n", 1, "no server blocks"),
        ("{\n}", 1, "expected at least one server block key"),
        ("}", 1, "unexpected '}'"),
        (". {\n  bind ::1\n", 1, "'{' is never closed"),
        (". {\n  k8s_gateway {\n    ttl 5\n}\n", 1, "'{' is never closed"),
        (". {\n}\n}", 3, "unexpected '}'"),
        (". {\n}\nexample.org\nbind ::1", 4, "expected '{' after the server block keys, got \"bind\""),
        (". {\n}\nexample.org", 3, "expected '{' after the server block keys, got end of file"),
        (". {\n  { x }\n}", 2, "unexpected '{' (expected a directive name)"),
        ("a.org,\n", 1, "expected another server block key after ','"),
        ("a.org, {\n}", 1, "expected another server block key after ',', got '{'"),
        ('"" {\n}', 1, "expected at least one server block key"),
        (". {\n  k8s_gateway { ttl 5 } ready\n}", 2, "unexpected \"ready\" after '}'"),
        ("example.org\nk8s_gateway\nexample.net {\n}\n", 3, "looks like a second server block"),
        ("example.org\nk8s_gateway\n}\n", 3, "unexpected '}' (no block is open)"),
    ],
)
def test_structure_errors(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert str(info.value).startswith(f"Corefile:{line}: ")
    assert message in str(info.value)
    assert (info.value.filename, info.value.line) == ("Corefile", line)


def test_nesting_is_bounded() -> None:
    depth = MAX_NESTING + 1
    text = ". {\n" + "x {\n" * depth + "}\n" * (depth + 1)
    with pytest.raises(ConfigError, match=f"nested more than {MAX_NESTING} deep"):
        parse(text)
    ok = ". {\n" + "x {\n" * (MAX_NESTING - 1) + "}\n" * MAX_NESTING
    assert parse(ok)
