"""Corefile tokens: the Caddyfile lexer rules CoreDNS uses."""

from __future__ import annotations

import pytest

from k8sgw.config.lexer import Token, expand_placeholders, tokenize
from k8sgw.errors import ConfigError


def lex(text: str, **env: str) -> list[tuple[str, int]]:
    return [(t.text, t.line) for t in tokenize(text, filename="Corefile", env=env)]


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", []),
        ("  \n\t\r\n", []),
        (". {\n}", [(".", 1), ("{", 1), ("}", 2)]),
        ("a b\n\nc", [("a", 1), ("b", 1), ("c", 3)]),
        ("# only a comment\nx", [("x", 2)]),
        ("a # comment { }\nb", [("a", 1), ("b", 2)]),
        ("foo#bar baz\nq", [("foo", 1), ("q", 2)]),  # as Caddy: # mid-word starts a comment
        ('"a b" c', [("a b", 1), ("c", 1)]),
        ('"# not a comment"', [("# not a comment", 1)]),
        ('"say \\"hi\\""', [('say "hi"', 1)]),
        ('"a\\\\b"', [("a\\\\b", 1)]),  # backslashes other than \" stay
        ('"a\\\\" b', [("a\\\\", 1), ("b", 1)]),  # \\ does not escape the closing quote
        ('""', [("", 1)]),
        ('"line1\nline2" next\nlast', [("line1\nline2", 1), ("next", 2), ("last", 3)]),
        ('"a"b', [("a", 1), ("b", 1)]),
        ('a"b"', [('a"b"', 1)]),
        ("a\r\nb", [("a", 1), ("b", 2)]),
    ],
)
def test_tokens(text: str, tokens: list[tuple[str, int]]) -> None:
    assert lex(text) == tokens


def test_quoted_token_spanning_lines_records_end_line() -> None:
    (tok,) = tokenize('\n"a\nb\nc"', filename="Corefile", env={})
    assert (tok.line, tok.end_line, tok.quoted) == (2, 4, True)


def test_braces_are_structure_only_when_bare() -> None:
    toks = tokenize('{ } "{" "}" {x} x{', filename="Corefile", env={})
    assert [(t.text, t.brace) for t in toks] == [
        ("{", "{"),
        ("}", "}"),
        ("{", ""),
        ("}", ""),
        ("{x}", ""),
        ("x{", ""),
    ]
    assert toks[0].is_open and toks[1].is_close and not toks[2].is_open


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("{$ZONE}", "example.org"),
        ("{$ZONE}:{$PORT}", "example.org:1053"),
        ("{%ZONE%}", "example.org"),
        ("pre-{$MISSING}-post", "pre--post"),
        ("{$}", "{$}"),  # empty name: left as written
        ("{$ZONE", "{$ZONE"),
        ("{%MISSING%}{$ZONE}", "example.org"),
        ("no placeholder", "no placeholder"),
    ],
)
def test_placeholders(text: str, expanded: str) -> None:
    assert expand_placeholders(text, {"ZONE": "example.org", "PORT": "1053"}) == expanded


def test_placeholders_expand_in_quoted_and_bare_tokens_but_make_no_braces() -> None:
    assert lex('{$A} "x {$A}" {$B}', A="v", B="{") == [("v", 1), ("x v", 1), ("{", 1)]
    (_, _, brace_from_env) = tokenize("{$A} x {$B}", filename="Corefile", env={"A": "v", "B": "{"})
    assert brace_from_env == Token("{", 1, 1, brace="")


def test_unterminated_quote_names_the_line_it_starts_on() -> None:
    with pytest.raises(ConfigError) as info:
        tokenize('a\nb "open\n\n', filename="Corefile", env={})
    assert str(info.value).startswith("Corefile:2: unterminated quoted string")
