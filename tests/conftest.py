"""Shared fixtures (each lives in its own tests/fixture_*.py module and is imported here), and the scheduling of
the modules that fill the machine."""

import os

import pytest
from xdist.scheduler import LoadFileScheduling

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


# Modules whose tests each fill a two-core machine (Chromium, JupyterLab and its kernels, a whole `./kit
# classroom`). Side by side on two workers under TCG, a lesson's kernel and the classroom's token server each
# missed its deadline (bookworm's VM run of 3d45365), so one worker runs them, one after another.
WHOLE_MACHINE = ("tests/test_browser.py", "tests/test_jupyterlab.py", "tests/test_kit_classroom.py")
WHOLE_MACHINE_UNIT = "whole-machine"


def scheduling_unit(nodeid: str) -> str:
    """The unit of work a test is scheduled in: its file (as --dist loadfile), or "whole-machine"."""
    file = nodeid.split("::", 1)[0]
    return WHOLE_MACHINE_UNIT if file in WHOLE_MACHINE else file


class LoadFileWholeMachineTogether(LoadFileScheduling):
    """--dist loadfile with the WHOLE_MACHINE modules as one unit, which one worker runs first, one after another."""

    def _split_scope(self, nodeid: str) -> str:
        return scheduling_unit(nodeid)

    def _assign_work_unit(self, node) -> None:
        # xdist queues the largest units first; the longest-running unit goes first, so that it has no serial tail
        if WHOLE_MACHINE_UNIT in self.workqueue:
            self.workqueue.move_to_end(WHOLE_MACHINE_UNIT, last=False)
        super()._assign_work_unit(node)


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which would return plain loadfile
def pytest_xdist_make_scheduler(config, log):
    """Schedule --dist loadfile runs with LoadFileWholeMachineTogether; leave other modes to xdist."""
    return LoadFileWholeMachineTogether(config, log) if config.getvalue("dist") == "loadfile" else None
