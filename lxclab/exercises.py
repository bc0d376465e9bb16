"""Checks for the lessons' exercises: compare a learner's function with an oracle, in plain words.

A check prints one line per case it passed and raises `ExerciseError` with a hint on the
first case that fails, so a learner sees what is wrong rather than a bare traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .errors import LxclabError


class ExerciseError(LxclabError):
    """An exercise that is not done yet, or gives a wrong answer."""


def unfinished_name(function: Callable, stub: NotImplementedError) -> str:
    """The name of the function whose `raise NotImplementedError` stopped a call of `function`.

    That is the innermost frame of the traceback that runs in the learner's namespace (the
    module `function` was defined in): the function itself, or another exercise it calls.
    """
    name = getattr(function, "__name__", "your function")
    namespace, own_code = getattr(function, "__globals__", None), getattr(function, "__code__", None)
    frame = stub.__traceback__
    while frame is not None:
        code = frame.tb_frame.f_code
        if code is own_code:
            name = getattr(function, "__name__", "your function")
        elif frame.tb_frame.f_globals is namespace and not code.co_name.startswith("<"):
            name = code.co_name
        frame = frame.tb_next
    return name


def not_written(function: Callable, stub: NotImplementedError) -> ExerciseError:
    """The error a check raises when a call of `function` met an unwritten stub, naming the unwritten function."""
    return ExerciseError(f"{unfinished_name(function, stub)} is not written yet: "
                         "replace the `raise NotImplementedError` line with your code.")


def check_cases(function: Callable, cases: Iterable[tuple[tuple, Any]], hint: str = "") -> None:
    """Call `function(*args)` for each (args, expected) case; raise ExerciseError on the first wrong one."""
    name = getattr(function, "__name__", "your function")
    count = 0
    for args, expected in cases:
        shown = ", ".join(repr(a) for a in args)
        try:
            actual = function(*args)
        except NotImplementedError as stub:
            raise not_written(function, stub) from None
        except Exception as exc:  # the learner's code may fail in any way; say how, in one line
            raise ExerciseError(f"{name}({shown}) raised {type(exc).__name__}: {exc}. {hint}".strip()) from None
        if actual != expected:
            raise ExerciseError(f"{name}({shown}) returned {actual!r}, but the answer is {expected!r}. {hint}".strip())
        count += 1
    print(f"✓ {name}: all {count} cases agree with lxclab")


def check_against(function: Callable, oracle: Callable, inputs: Iterable[tuple], hint: str = "") -> None:
    """Check `function` against an independent `oracle` (the library, or the kernel) on each input."""
    check_cases(function, [(args, oracle(*args)) for args in inputs], hint)
