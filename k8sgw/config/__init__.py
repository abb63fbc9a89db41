"""The Corefile: read it, check it, and turn it into frozen config models.

    text ──lexer──▶ tokens ──parser──▶ generic blocks ──directives──▶ Config

Every problem is a ``ConfigError`` naming the file, the line and what was expected.
This package does no I/O beyond reading the Corefile in ``load`` and never imports trio.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# Directive families register themselves on import (see registry.py).
from k8sgw.config import dnsplugins as _dnsplugins  # noqa: F401
from k8sgw.config import ops as _ops  # noqa: F401
from k8sgw.config import transfer as _transfer  # noqa: F401
from k8sgw.config.directives import build_config as _build_config
from k8sgw.config.directives import supported_directives as _supported_directives
from k8sgw.config.lexer import tokenize as _tokenize
from k8sgw.config.models import (
    SUPPORTED_RESOURCES,
    Config,
    GatewayConfig,
    KubeconfigRef,
    ServerBlock,
    ServerKey,
)
from k8sgw.config.parser import parse_tokens as _parse_tokens
from k8sgw.errors import ConfigError
from k8sgw.explain import directive as _explain  # noqa: F401  (the `explain` directive)

SUPPORTED_DIRECTIVES: tuple[str, ...] = _supported_directives()

__all__ = [
    "SUPPORTED_DIRECTIVES",
    "SUPPORTED_RESOURCES",
    "Config",
    "ConfigError",
    "GatewayConfig",
    "KubeconfigRef",
    "ServerBlock",
    "ServerKey",
    "load",
    "parse_corefile",
]


def parse_corefile(
    text: str,
    *,
    filename: str = "Corefile",
    default_port: int = 53,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Parse Corefile ``text``.

    Args:
        text: the Corefile's contents.
        filename: named in errors; relative ``kubeconfig`` paths are taken relative to
            its directory.
        default_port: port of keys written without one (``-dns.port``); 0 = any free port.
        env: values for ``{$NAME}`` / ``{%NAME%}`` placeholders; ``os.environ`` if None.

    Raises:
        ConfigError: anything wrong, as ``FILE:LINE: what was expected``.
    """
    if isinstance(default_port, bool) or not 0 <= default_port <= 65535:
        raise ConfigError(f"default DNS port must be from 0 to 65535, got {default_port}", filename=filename)
    tokens = _tokenize(text, filename=filename, env=os.environ if env is None else env)
    blocks = _parse_tokens(tokens, filename=filename)
    return _build_config(blocks, filename=filename, default_port=default_port)


def load(path: str | os.PathLike[str], *, default_port: int = 53) -> Config:
    """Read and parse the Corefile at ``path`` (placeholders expand from ``os.environ``).

    Raises:
        ConfigError: the file cannot be read, or its contents are wrong.
    """
    filename = os.fspath(path)
    try:
        with open(filename, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read Corefile: {exc.strerror or exc}", filename=filename) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read Corefile: not UTF-8 text ({exc.reason})", filename=filename) from exc
    return parse_corefile(text, filename=filename, default_port=default_port)
