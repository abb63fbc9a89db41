"""The table of server-block directives beyond `bind` and `k8s_gateway`.

Each family of directives lives in its own module (dnsplugins.py: forward, cache, loadbalance,
loop; ops.py: health, ready, prometheus, log, errors, reload) and registers a parser here with
`@directive("name")`. A parser turns one generic Directive into a frozen model, which ends up in
`ServerBlock.plugins[name]`. build_config rejects a directive given twice in one block.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from k8sgw.config.parser import Directive
from k8sgw.errors import ConfigError

__all__ = [
    "Context",
    "DirectiveParser",
    "count_args",
    "directive",
    "no_block",
    "no_options",
    "parser_for",
    "registered",
]


class Context:
    """What a directive parser needs to know about the Corefile being read."""

    def __init__(self, filename: str, default_port: int) -> None:
        self.filename = filename
        self.default_port = default_port
        self.base_dir = os.path.dirname(os.path.abspath(filename))

    def error(self, message: str, line: int) -> ConfigError:
        return ConfigError(message, filename=self.filename, line=line)


DirectiveParser = Callable[[Directive, Context], Any]

_PARSERS: dict[str, DirectiveParser] = {}


def directive(name: str) -> Callable[[DirectiveParser], DirectiveParser]:
    """Register the parser of server-block directive `name`."""

    def register(parser: DirectiveParser) -> DirectiveParser:
        if name in _PARSERS:
            raise RuntimeError(f"directive {name!r} registered twice")
        _PARSERS[name] = parser
        return parser

    return register


def parser_for(name: str) -> DirectiveParser | None:
    return _PARSERS.get(name)


def registered() -> tuple[str, ...]:
    return tuple(_PARSERS)


def count_args(d: Directive, ctx: Context, usage: str, low: int, high: int | None) -> None:
    """Raise unless d has from low to high (None: any number) arguments."""
    n = len(d.args)
    if n < low or (high is not None and n > high):
        got = f"{n} argument" + ("" if n == 1 else "s")
        raise ctx.error(f"{d.name}: expected {usage}, got {got}", d.line)


def no_block(d: Directive, ctx: Context) -> None:
    if d.children is not None:
        raise ctx.error(f"{d.name}: does not take a block", d.line)


def no_options(d: Directive, ctx: Context, supported: str = "") -> None:
    """Reject any option in d's block: CoreDNS has options k8sgw does not implement."""
    if d.children:
        child = d.children[0]
        hint = f" ({supported})" if supported else ""
        raise ctx.error(f'{d.name}: option "{child.name}" is not supported by k8sgw{hint}', child.line)
