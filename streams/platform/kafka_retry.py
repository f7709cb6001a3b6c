"""Patience with a Kafka cluster: retry an operation through an outage, within bounds, quietly.

Every helper of :mod:`streams.platform.kafka` and :mod:`streams.platform.kafka_admin` a command uses goes
through :func:`patiently`: a retriable error (:func:`streams.platform.kafka_errors.classify`) is retried with
exponential backoff and jitter until the cluster answers again or the patience is spent — then the command
ends with :class:`ClusterUnavailable` (exit 3), naming the bootstrap and the last error. An auth error ends
it at once (:class:`KafkaAccessDenied`); anything else is raised as it is. One warning when an outage begins
and one when it ends, never one per attempt, and never a traceback.

The patience is ``BOSAI_KAFKA_PATIENCE_S`` seconds (default 120; ``bosai --kafka-patience`` sets it for the
command and the processes it starts).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from streams.kernel.errors import ClusterUnavailable, KafkaAccessDenied, SettingsError
from streams.platform.kafka_errors import Kind, Outage, Patience, classify, describe

log = logging.getLogger("bosai.kafka")

ENV_PATIENCE = "BOSAI_KAFKA_PATIENCE_S"
DEFAULT_PATIENCE_S = 120.0

T = TypeVar("T")
P = ParamSpec("P")


def patience_from_env() -> Patience:
    """The patience the environment sets (``BOSAI_KAFKA_PATIENCE_S``), else the default."""
    raw = os.environ.get(ENV_PATIENCE, "").strip()
    if not raw:
        return Patience(DEFAULT_PATIENCE_S)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise SettingsError("environment", ENV_PATIENCE, raw, "a number of seconds, 0 or more")
    return Patience(seconds)


async def patiently(
    what: str,
    bootstrap: str,
    call: Callable[[], Awaitable[T]],
    *,
    patience: Patience | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: random.Random | None = None,
    notify: Callable[[str], object] = log.warning,
) -> T:
    """``await call()``, retried through a cluster outage within the patience (see the module)."""
    outage = Outage(what, bootstrap, patience or patience_from_env(), rng or random.Random())
    with ExitStack() as quiet:
        while True:
            try:
                result = await call()
            except Exception as exc:
                kind = classify(exc)
                if kind is Kind.FATAL:
                    raise
                if kind is Kind.AUTH:
                    raise KafkaAccessDenied(
                        f"the Kafka cluster at {bootstrap} refused {what}: {describe(exc)} (check the hub's "
                        f"credential and grants: BOSAI_KAFKA_CONFIG, `bosai access plan`)"
                    ) from None
                step = outage.failed(exc, clock())
                if step.give_up:
                    raise ClusterUnavailable(outage.gave_up(clock())) from None
                if step.notice:
                    notify(step.notice)
                    quiet.enter_context(client_quiet())
                await sleep(step.delay_s)
                continue
            ended = outage.recovered(clock())
            if ended:
                notify(ended)
            return result


_QUIET = {"depth": 0, "level": logging.NOTSET}


@contextmanager
def client_quiet() -> Iterator[None]:
    """aiokafka logs an error at every connection it fails to make: while an outage lasts, its first notice and
    its end say it once (unless the log level is debug)."""
    client_log = logging.getLogger("aiokafka")
    if _QUIET["depth"] == 0:
        _QUIET["level"] = client_log.level
        if not client_log.isEnabledFor(logging.DEBUG):
            client_log.setLevel(logging.CRITICAL)
    _QUIET["depth"] += 1
    try:
        yield
    finally:
        _QUIET["depth"] -= 1
        if _QUIET["depth"] == 0:
            client_log.setLevel(_QUIET["level"])


Operation = Callable[Concatenate[str, P], Coroutine[Any, Any, T]]  # an async operation on a bootstrap


def patient(what: str) -> Callable[[Operation[P, T]], Operation[P, T]]:
    """Decorate an async operation whose first argument is the bootstrap: it runs :func:`patiently`."""

    def decorate(operation: Operation[P, T]) -> Operation[P, T]:
        @functools.wraps(operation)
        async def patiently_done(bootstrap: str, /, *args: P.args, **kwargs: P.kwargs) -> T:
            return await patiently(what, bootstrap, lambda: operation(bootstrap, *args, **kwargs))

        return patiently_done

    return decorate
