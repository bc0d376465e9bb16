"""The one place that imports the python-lxc binding, so that lxclab imports without it."""

from __future__ import annotations

from types import ModuleType

from ..errors import LxcUnavailable


def pylxc() -> ModuleType:
    """The python-lxc module (PyPI `lxc`); raises LxcUnavailable when it is not installed."""
    try:
        import lxc
    except ImportError as error:
        raise LxcUnavailable(
            f"the python-lxc binding is not importable ({error}): install liblxc and lxc-dev, "
            "then `pip install 'lxclab[lxc]'` (PyPI `lxc`)"
        ) from error
    return lxc
