"""The one place that imports the python-lxc binding, so that lxclab imports without it."""

from __future__ import annotations

from types import ModuleType
from typing import Any

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


def liblxc_set_config_item(container: Any, key: str, value: str) -> bool:
    """liblxc's own verdict on one config value, without python-lxc's read-back check on top.

    python-lxc's set_config_item reads the value back and returns False (and clears the key)
    when liblxc stores it in another form, as it stores 'dir:/path' as '/path' (lesson 08).
    """
    return bool(super(pylxc().Container, container).set_config_item(key, value))
