"""Corefile parser: tokens → server blocks of generic directives.

The grammar is CoreDNS's Caddyfile dialect::

    corefile  := block+
    block     := KEY+ "{" directive* "}"          keys on one line; a key ending in ","
               | KEY+ directive*                  continues on the next line. The brace-less
                                                  form only for a sole block (to end of file)
    directive := NAME ARG* ["{" directive* "}"]   NAME and ARGs on one line; "{" may follow
                                                  the ARGs or start the next line

Braces are structure only when unquoted and standing alone (``"{"`` is an argument).
``}`` may close a block on the same line (``health { lameduck 5s }``).

This module checks structure only. What a directive means, and whether it exists at all,
is decided in ``directives``.
"""

from __future__ import annotations

from dataclasses import dataclass

from k8sgw.config.lexer import Token
from k8sgw.errors import ConfigError

__all__ = ["IMPORT_UNSUPPORTED", "Directive", "RawServerBlock", "parse_tokens", "unset_variables"]

SNIPPETS_UNSUPPORTED = "snippets and import are not supported by k8sgw: write their lines in each block"
IMPORT_UNSUPPORTED = f"import: {SNIPPETS_UNSUPPORTED}"

def unset_variables(names: tuple[str, ...]) -> str:
    """What to say of placeholders whose variables are not set."""
    if len(names) == 1:
        return f"environment variable {names[0]} is not set"
    return f"environment variables {', '.join(dict.fromkeys(names))} are not set"


# Deep enough for any real Corefile (CoreDNS plugins nest two levels); a bound keeps a
# hostile file from exhausting the Python stack.
MAX_NESTING = 16


@dataclass(frozen=True, slots=True)
class Directive:
    """One directive line, e.g. ``ttl 30`` or ``k8s_gateway example.org { ... }``."""

    name: str
    args: tuple[Token, ...]
    children: tuple[Directive, ...] | None
    """Sub-directives of a ``{ ... }`` block; ``None`` when the directive has no block."""
    line: int


@dataclass(frozen=True, slots=True)
class RawServerBlock:
    """A server block before its keys and directives are interpreted."""

    keys: tuple[Token, ...]
    """One token per key; ``a,b`` yields two keys with the line of the word."""
    directives: tuple[Directive, ...]
    line: int


class _Parser:
    def __init__(self, tokens: list[Token], filename: str) -> None:
        self.tokens = tokens
        self.filename = filename
        self.pos = 0

    def error(self, message: str, line: int) -> ConfigError:
        return ConfigError(message, filename=self.filename, line=line)

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def same_line(self, tok: Token | None, prev: Token) -> bool:
        return tok is not None and tok.line == prev.end_line

    def parse(self) -> tuple[RawServerBlock, ...]:
        if not self.tokens:
            raise self.error("no server blocks (expected ZONE[:PORT] { ... })", 1)
        blocks: list[RawServerBlock] = []
        while (tok := self.peek()) is not None:
            if tok.text == "import" and not tok.quoted:
                raise self.error(IMPORT_UNSUPPORTED, tok.line)
            if tok.text.startswith("(") and tok.text.endswith(")") and not tok.quoted:
                raise self.error(f"snippet {tok.text}: {SNIPPETS_UNSUPPORTED}", tok.line)
            if tok.unset and not tok.text.strip(",") and not tok.brace:
                raise self.error(f"server block key is empty: {unset_variables(tok.unset)}", tok.line)
            blocks.append(self.server_block(first=not blocks))
        return tuple(blocks)

    def server_block(self, *, first: bool) -> RawServerBlock:
        start = self.tokens[self.pos]
        keys = self.keys()
        tok = self.peek()
        if tok is not None and tok.is_open:
            self.pos += 1
            directives = self.directives(opened=tok, depth=1)
        elif first:
            # Caddy allows one server block without braces: directives to the end of file.
            directives = self.directives(opened=None, depth=1)
            for d in directives:
                if d.children is not None and _looks_like_key(d.name):
                    raise self.error(
                        f'"{d.name} {{" looks like a second server block, but the block before it '
                        f"(line {start.line}) has no braces; put {{ }} around every block",
                        d.line,
                    )
        else:
            raise self.error(
                f"expected '{{' after the server block keys, got {_describe(tok)}",
                (tok or keys[-1]).line,
            )
        return RawServerBlock(keys=keys, directives=directives, line=start.line)

    def keys(self) -> tuple[Token, ...]:
        keys: list[Token] = []
        first = self.tokens[self.pos]
        more = False  # the previous word ended in ",": the list goes on, maybe on the next line
        while (tok := self.peek()) is not None:
            if tok.is_open:
                break
            if tok.is_close:
                raise self.error("unexpected '}' (expected server block keys ZONE[:PORT])", tok.line)
            self.pos += 1
            parts = tok.text.split(",")
            keys.extend(Token(p, tok.line, tok.end_line, tok.quoted, unset=tok.unset) for p in parts if p)
            more = tok.text.endswith(",")
            if not more and not self.same_line(self.peek(), tok):
                break
        if more:
            tok = self.peek()
            raise self.error(
                f"expected another server block key after ',', got {_describe(tok)}",
                (tok or self.tokens[self.pos - 1]).line,
            )
        if not keys:
            raise self.error("expected at least one server block key ZONE[:PORT]", first.line)
        return tuple(keys)

    def directives(self, *, opened: Token | None, depth: int) -> tuple[Directive, ...]:
        """Directives up to the ``}`` matching ``opened`` (or to end of file when ``None``)."""
        if depth > MAX_NESTING:
            assert opened is not None
            raise self.error(f"blocks nested more than {MAX_NESTING} deep", opened.line)
        out: list[Directive] = []
        while True:
            tok = self.peek()
            if tok is None:
                if opened is None:
                    return tuple(out)
                raise self.error("'{' is never closed (expected '}' before end of file)", opened.line)
            self.pos += 1
            if tok.is_close:
                if opened is None:
                    raise self.error("unexpected '}' (no block is open)", tok.line)
                return tuple(out)
            if tok.is_open:
                raise self.error("unexpected '{' (expected a directive name)", tok.line)
            out.append(self.directive(tok, depth))

    def directive(self, name: Token, depth: int) -> Directive:
        args: list[Token] = []
        last = name
        while (tok := self.peek()) is not None and not tok.brace and self.same_line(tok, last):
            args.append(tok)
            last = tok
            self.pos += 1
        children = None
        tok = self.peek()
        if tok is not None and tok.is_open:  # on this line or starting the next, as in Caddy
            self.pos += 1
            children = self.directives(opened=tok, depth=depth + 1)
            closing = self.tokens[self.pos - 1]
            after = self.peek()
            if after is not None and not after.brace and self.same_line(after, closing):
                raise self.error(
                    f"unexpected {_describe(after)} after '}}' (expected a new line)", after.line
                )
        return Directive(name=name.text, args=tuple(args), children=children, line=name.line)


def _describe(tok: Token | None) -> str:
    if tok is None:
        return "end of file"
    return f"'{tok.brace}'" if tok.brace else f'"{tok.text}"'


def _looks_like_key(name: str) -> bool:
    return name == "." or "." in name or ":" in name


def parse_tokens(tokens: list[Token], *, filename: str) -> tuple[RawServerBlock, ...]:
    """Group ``tokens`` into server blocks of directives.

    Raises:
        ConfigError: no blocks, unbalanced braces, missing keys or a misplaced brace.
    """
    return _Parser(tokens, filename).parse()
