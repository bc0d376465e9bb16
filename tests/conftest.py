"""Shared fixtures: each lives in its own tests/fixture_*.py module and is imported here."""

import os

import pytest

from fixture_rootfs import busybox_rootfs  # noqa: F401
from fixture_classroom import classroom, short_token_classroom  # noqa: F401
from fixture_lxc import lxcpath, make_container  # noqa: F401
from fixture_seed import seed_layout, seeded_classroom  # noqa: F401
from fixture_images import lxclab_home, pushed_image  # noqa: F401
from fixture_kernel import world_readable_rootfs  # noqa: F401
from fixture_nobody import nobody_python  # noqa: F401


class TracebacksAtOnce:
    """Prints a failure's traceback when it happens: a VM run lasts hours, and pytest keeps them to its end."""

    def __init__(self, terminal):
        self.terminal = terminal

    def pytest_runtest_logreport(self, report) -> None:
        """Write the failed phase's traceback under a line naming the test."""
        if report.failed:
            self.terminal.write_sep("_", f"{report.nodeid} failed ({report.when})", red=True)
            self.terminal.write_line(report.longreprtext)


@pytest.hookimpl(trylast=True)  # after the terminal reporter is registered
def pytest_configure(config) -> None:
    """With $LXCLAB_TEST_TRACEBACKS_AT_ONCE set (./kit vm-test sets it), print tracebacks as failures happen."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if os.environ.get("LXCLAB_TEST_TRACEBACKS_AT_ONCE") and terminal is not None and not hasattr(config, "workerinput"):
        config.pluginmanager.register(TracebacksAtOnce(terminal), "lxclab-tracebacks-at-once")
