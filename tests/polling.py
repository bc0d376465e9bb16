"""Waiting in tests for something the kernel or another process does in its own time."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
# How much slower than a real machine this one is: a VM under TCG (./kit vm-test sets it) runs browsers and
# starts services many times slower. Waits that such a machine stretches are scaled by it; they still fail, only later.
SLOWDOWN = float(os.environ.get("LXCLAB_TEST_SLOWDOWN", "1"))


def eventually(check: Callable[[], T], timeout: float = 5.0) -> T:
    """Poll `check` until it returns something truthy or `timeout` seconds (times SLOWDOWN) pass; return its last value."""
    deadline = time.monotonic() + timeout * SLOWDOWN
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result
