"""The contract every parser of outside input keeps, checked for one input at a time.

Any input gives a value, or the module's ONE documented error type carrying a reason — never another
exception, never a hang (a hard per-case deadline: SIGALRM interrupts the parser), never unbounded
memory (each parser's size caps are checked by the tests that call this, and the atheris runs have an
RSS limit). Every call is counted per parser, and the counts are printed at the end of the session
(``tests/fuzz/conftest.py``), so a report can say how many cases each parser saw.
"""

from __future__ import annotations

import os
import signal
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

#: parser name -> cases run (this process); atheris subprocess figures are added by their test
CASES: Counter[str] = Counter()
#: parser name -> how many of those cases were refused with the documented error (the rest gave a value)
REFUSED: Counter[str] = Counter()

DEFAULT_DEADLINE_S = float(os.environ.get("BOSAI_FUZZ_DEADLINE_S", "5"))


class Hang(BaseException):
    """A parser ran past the per-case deadline (a BaseException, so no parser's `except Exception` eats it)."""


class ContractBroken(AssertionError):
    """A parser answered an input with something its contract does not allow."""


@contextmanager
def deadline(seconds: float = DEFAULT_DEADLINE_S):
    """Interrupt the block with :class:`Hang` after ``seconds`` (main thread only; elsewhere: no limit)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(_signum, _frame):
        raise Hang(f"no answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def reason_of(error: BaseException) -> str:
    """The reason an error carries: its ``reason`` code when it has one, else its message."""
    reason = getattr(error, "reason", None)
    return reason if isinstance(reason, str) else str(error)


def check(
    parser: str,
    call: Callable[[], Any],
    error: type[BaseException] | tuple[type[BaseException], ...],
    *,
    reasons: frozenset[str] | set[str] | tuple[str, ...] | None = None,
    seconds: float = DEFAULT_DEADLINE_S,
    shown: Any = None,
) -> Any:
    """``call()``'s value, or the documented error (returned, not raised) with a non-empty reason.

    ``reasons``: the reason codes the error may carry (None: any non-empty reason). Anything else —
    another exception type, an error without a reason, a reason outside ``reasons``, a hang — raises
    :class:`ContractBroken` naming the parser, the input (``shown``) and what happened.
    """
    CASES[parser] += 1
    try:
        with deadline(seconds):
            return call()
    except error as exc:
        REFUSED[parser] += 1
        reason = reason_of(exc)
        if not reason or not str(exc).strip():
            raise ContractBroken(f"{parser}: {type(exc).__name__} without a reason for {_show(shown)}") from exc
        if reasons is not None and getattr(exc, "reason", None) not in reasons:
            raise ContractBroken(
                f"{parser}: reason {reason!r} is not one of {sorted(reasons)} for {_show(shown)}"
            ) from exc
        return exc
    except Hang as exc:
        raise ContractBroken(f"{parser}: {exc} for {_show(shown)}") from None
    except Exception as exc:  # the point: nothing else may come out of a parser
        raise ContractBroken(
            f"{parser}: {type(exc).__name__}: {exc} for {_show(shown)}\n{traceback.format_exc(limit=8)}"
        ) from exc


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 300 else f"{text[:300]}… ({len(text)} chars)"
