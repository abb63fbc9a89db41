"""Corefile lexer: text → tokens with line numbers.

Follows the Caddyfile (v1) lexer that CoreDNS uses, so a Corefile splits into the same
tokens here as there:

- tokens are separated by whitespace; only ``\\n`` counts as a new line;
- ``#`` outside quotes starts a comment that runs to the end of the line, even in the
  middle of a word (``foo#bar`` is the token ``foo``);
- ``"`` at the start of a token opens a quoted token that ends at the next unescaped
  ``"``; inside it a backslash escapes the next character, and only ``\\"`` drops the
  backslash (``\\\\`` stays two backslashes, as in Caddy);
  a quoted token may span lines;
- ``{$NAME}`` and ``{%NAME%}`` placeholders are replaced by the environment variable's
  value (empty when unset), in quoted tokens too.

One difference: an unterminated quote is an error here, where Caddy keeps the text.
This module knows nothing of blocks or directives; see ``parser``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from k8sgw.errors import ConfigError

__all__ = ["Token", "expand_placeholders", "tokenize"]

# Caddy replaces {%NAME%} first, then {$NAME}; an empty name is left as written.
_PERCENT_REF = re.compile(r"\{%(.+?)%\}", re.DOTALL)
_DOLLAR_REF = re.compile(r"\{\$([^}]+)\}")


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a Corefile."""

    text: str
    """The word after quote removal and placeholder expansion."""
    line: int
    """1-based line where the token starts."""
    end_line: int
    """Line where it ends: later than ``line`` only for a quoted token spanning lines."""
    quoted: bool = False
    brace: str = ""
    """``"{"`` or ``"}"`` for an unquoted brace as written (structure), else ``""``."""
    unset: tuple[str, ...] = ()
    """Placeholders in it whose environment variable is not set (they expanded to ``""``)."""

    @property
    def is_open(self) -> bool:
        return self.brace == "{"

    @property
    def is_close(self) -> bool:
        return self.brace == "}"


def expand_placeholders(text: str, env: Mapping[str, str]) -> str:
    """Replace ``{%NAME%}`` then ``{$NAME}`` with ``env[NAME]`` (``""`` when missing)."""
    return _expand(text, env)[0]


def _expand(text: str, env: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """expand_placeholders, and the names of the variables that were not set."""
    if "{" not in text:
        return text, ()
    unset: list[str] = []

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            unset.append(name)
        return env.get(name, "")

    text = _PERCENT_REF.sub(value, text)
    return _DOLLAR_REF.sub(value, text), tuple(unset)


def tokenize(text: str, *, filename: str, env: Mapping[str, str]) -> list[Token]:
    """Split Corefile ``text`` into tokens.

    Raises:
        ConfigError: a quoted token is not closed before the end of the text.
    """
    tokens: list[Token] = []
    line = 1
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace():
            i += 1
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end == -1 else end
        elif ch == '"':
            start_line = line
            chars: list[str] = []
            i += 1
            while True:
                if i >= n:
                    raise ConfigError(
                        "unterminated quoted string (expected a closing '\"')",
                        filename=filename,
                        line=start_line,
                    )
                ch = text[i]
                if ch == "\\" and i + 1 < n:
                    # Caddy: a backslash escapes the next character; only \" loses the backslash.
                    nxt = text[i + 1]
                    chars.append(nxt if nxt == '"' else ch + nxt)
                    line += nxt == "\n"
                    i += 2
                    continue
                i += 1
                if ch == '"':
                    break
                if ch == "\n":
                    line += 1
                chars.append(ch)
            value, unset = _expand("".join(chars), env)
            tokens.append(Token(value, start_line, line, quoted=True, unset=unset))
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] != "#":
                i += 1
            raw = text[start:i]
            brace = raw if raw in ("{", "}") else ""
            value, unset = _expand(raw, env)
            tokens.append(Token(value, line, line, brace=brace, unset=unset))
    return tokens
