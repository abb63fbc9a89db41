"""The `explain [ADDRESS]` directive: serve GET /explain and GET /explain/skipped over HTTP.

Off unless a server block has it, and bound to 127.0.0.1:9155 unless an address is given: the
answers name the cluster's objects (namespaces, names, classes, labels), so they are for someone
who can reach the pod (`kubectl port-forward`), not for the network. Like `ready` and `health`
it is process-wide: the endpoints explain every k8s_gateway block.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from k8sgw.config.ops import _address
from k8sgw.config.parser import Directive
from k8sgw.config.registry import Context, count_args, directive, no_block

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ExplainConfig"]

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 9155


class ExplainConfig(BaseModel):
    """``explain [ADDRESS]``: GET /explain?name=N&type=T and GET /explain/skipped, as JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    host: str = DEFAULT_HOST
    """Where to listen; ``:PORT`` means every address, which exposes object names."""
    port: Annotated[int, Field(ge=0, le=65535)] = DEFAULT_PORT
    line: int


@directive("explain")
def _explain(d: Directive, ctx: Context) -> ExplainConfig:
    count_args(d, ctx, "[ADDRESS]", 0, 1)
    no_block(d, ctx)
    return ExplainConfig(line=d.line, **_address(d, ctx, DEFAULT_PORT))
