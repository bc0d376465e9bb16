"""`lxclab doctor`: what this machine can do, and per lesson what runs for real and what is only shown."""

from __future__ import annotations

import argparse
import json
import os
import textwrap
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..doctor import Report, Verdict

STATE_WIDTH = 9
LESSON_WIDTH = 28


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the doctor subcommand to the CLI."""
    command = subparsers.add_parser(
        "doctor", help="check what the lessons need; exit 0 when every lesson runs for real here")
    command.add_argument("--json", action="store_true", help="print the checks and the lessons' verdicts as JSON")
    command.add_argument("--notebooks", metavar="DIR", type=Path,
                         help="the folder of lessons to judge (default: the checkout's notebooks/)")
    command.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    """Run every check, print the table (or JSON), and return 0 only when every lesson runs for real."""
    from ..doctor import NOTEBOOKS, diagnose

    report = diagnose(args.notebooks or NOTEBOOKS)
    print(json.dumps(report.as_json(), indent=2) if args.json else render(report))
    return 0 if report.ready else 1


def render(report: Report) -> str:
    """The report as two tables, checks then lessons, each missing part followed by its fix."""
    needed = report.needed
    width = max(len(check.name) for check in report.checks) + 2
    lines = [f"lxclab doctor: this machine, as uid {os.geteuid()}, for the lessons", "",
             f"{'CHECK':<{width}}{'STATE':<{STATE_WIDTH}}FOUND"]
    for check in report.checks:
        state = "ok" if check.ok else "MISSING" if check.name in needed else "note"
        lines.append(f"{check.name:<{width}}{state:<{STATE_WIDTH}}{check.detail}")
        if check.fix:
            lines.append(f"{'':<{width}}{'fix:':<{STATE_WIDTH}}{check.fix}")
    lines += ["", f"{'LESSON':<{LESSON_WIDTH}}RUNS"]
    for verdict in report.verdicts:
        lines += _lesson_lines(verdict, report)
    lines += ["", _summary(report)]
    return "\n".join(lines)


def _lesson_lines(verdict: Verdict, report: Report) -> list[str]:
    """A lesson's line, the steps it will only show, and the fix for each missing check (each fix once)."""
    lesson = verdict.lesson
    shown = lesson.steps if "root" in verdict.missing else ("its user-namespace (rootless) section",)
    outcomes = {"real": "for real", "fails": f"FAILS: {', '.join(verdict.missing)} missing",
                "shown": f"for real, but {len(shown)} steps only shown ({', '.join(verdict.missing)} missing)"}
    runs = outcomes[verdict.outcome]
    lines = [f"{lesson.number + ' ' + lesson.name:<{LESSON_WIDTH}}{runs}"]
    if verdict.outcome == "shown":
        lines += textwrap.wrap(f"shown, not run: {'; '.join(shown)}", 100, initial_indent=" " * LESSON_WIDTH,
                               subsequent_indent=" " * (LESSON_WIDTH + 4))
    fixes = dict.fromkeys(report.check(name).fix for name in verdict.missing if report.check(name).fix)
    return lines + [f"{'':<{LESSON_WIDTH}}fix: {fix}" for fix in fixes]


def _summary(report: Report) -> str:
    """One closing line: ready, or how many lessons fall short and where to read more."""
    from ..doctor.checks import GUIDE

    if not report.verdicts:
        return f"No lessons found; {'every check they rest on is ok' if report.ready else 'see the MISSING lines'}."
    if report.ready:
        return "Every lesson runs for real here."
    counts = {outcome: sum(v.outcome == outcome for v in report.verdicts) for outcome in ("shown", "fails")}
    return (f"{counts['shown']} lessons only show their privileged steps, {counts['fails']} fail: "
            f"apply the fixes above; {GUIDE} explains each line.")
