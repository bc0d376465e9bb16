"""How the build track's checks speak: one ✓ line per thing checked, or a hint in plain words.

A check never prints ✓ for something it did not check: when a step cannot run here it
says so (`not_checked`) and stops short of the tick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..exercises import ExerciseError, not_written

__all__ = ["ExerciseError", "attempt", "expect", "passed", "not_checked"]


def attempt(function: Callable, *args: Any, hint: str = "") -> Any:
    """Call the learner's `function(*args)`; an unwritten stub or a crash becomes an ExerciseError with `hint`."""
    name = getattr(function, "__name__", "your function")
    try:
        return function(*args)
    except NotImplementedError as stub:
        raise not_written(function, stub) from None
    except ExerciseError:
        raise
    except Exception as exc:  # the learner's code may fail in any way: say how, in one line
        raise ExerciseError(f"{name} raised {type(exc).__name__}: {exc}. {hint}".strip()) from None


def expect(condition: bool, problem: str, hint: str) -> None:
    """Raise an ExerciseError saying `problem` and then `hint` unless `condition` holds."""
    if not condition:
        raise ExerciseError(f"{problem}. {hint}")


def passed(what: str) -> None:
    """Print the ✓ line of one thing that was checked and found right."""
    print(f"✓ {what}", flush=True)


def not_checked(what: str, why: str) -> None:
    """Say plainly that `what` was not checked here, and why (no ✓)."""
    print(f"– not checked here: {what} ({why})", flush=True)
