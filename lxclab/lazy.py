"""Names a package exports, imported from their modules on first use (PEP 562's module `__getattr__`).

A package whose `__init__` imports every module makes each user pay for all of them: a
container's start would load the layer extraction code (tarfile, gzip) to read two
constants. With `__getattr__, __dir__ = lazy_names(__name__, {name: module})` the package
keeps its public names (in `dir()` too, for completion in a notebook) and `__all__`, and
`from package import name` loads only `name`'s module.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def lazy_names(package: str, homes: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, importing each name of `homes` ({name: its submodule}) when first
    asked for."""

    def __getattr__(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = f"{package}.{homes[name]}"
        __import__(module)  # not importlib.import_module, which `python -X importtime` does not report
        value = getattr(sys.modules[module], name)
        setattr(sys.modules[package], name, value)  # asked once: later lookups find it without __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *homes})

    return __getattr__, __dir__
