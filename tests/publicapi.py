"""The names a module defines at top level, for tests that check its `__all__`."""

from __future__ import annotations

import inspect
import re
from types import ModuleType


def public_names(module: ModuleType) -> set[str]:
    """Public names a module defines at top level (def, class or NAME = ...), not ones it imports."""
    return {
        name
        for name in re.findall(r"^(?:def |class |async def )?([A-Za-z]\w*)\b", inspect.getsource(module), re.M)
        if name in vars(module) and not inspect.ismodule(vars(module)[name])
    } - {"from", "import", "logger"}


def public_callables(module: ModuleType) -> set[str]:
    """Public functions and classes a module defines itself (its constants need not be in __all__)."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and callable(value) and getattr(value, "__module__", None) == module.__name__
    }
