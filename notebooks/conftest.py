"""pytest hooks for running the lessons under nbval: a failed cell shows what it wrote to stderr."""

from __future__ import annotations

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Add the stderr a failed lesson cell wrote to its report (nbval names only the field: 'stderr')."""
    outcome = yield
    report = outcome.get_result()
    outputs = getattr(item, "test_outputs", None) or []
    stderr = "".join(output.get("text", "") for output in outputs if output.get("name") == "stderr")
    if report.failed and call.when == "call" and stderr:
        report.sections.append(("what the cell wrote to stderr", stderr))
