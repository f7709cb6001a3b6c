"""The one place that tells a Kafka client's errors apart, and how patient the hub is with a cluster.

A client error is **retriable** (a node lost, a leader or coordinator being elected, a request timed out:
the cluster heals itself within seconds to a minute), **auth** (the cluster refused the hub's credential or
an operation on a resource: waiting will not help, the operator must act) or **fatal** (anything else: a bug
or a wrong setting, reported as it is). aiokafka marks most transient errors ``retriable`` or
``invalid_metadata``; a few it leaves unmarked are transient during a node's loss all the same (``KafkaTimeoutError``,
``BrokerNotAvailableError``, ``RebalanceInProgressError``). Errors are told by their class names and those two
attributes, so this module needs no Kafka client (it is pure: the retry loop around it is
:mod:`streams.platform.kafka_retry`).

:class:`Patience` is the retry policy: bounded attempts and total time, exponential backoff with jitter.
:class:`Outage` follows one outage through its attempts and says what to log: its first failure and its end,
never every attempt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum


class Kind(Enum):
    RETRIABLE = "retriable"  # wait and try again, within the patience
    AUTH = "auth"  # the cluster refused the credential or an operation: the operator must act
    FATAL = "fatal"  # report as it is


# aiokafka's transient errors, by class name (most also carry retriable/invalid_metadata; these are certain)
RETRIABLE_NAMES = frozenset(
    {
        "NodeNotReadyError",
        "KafkaConnectionError",
        "NoBrokersAvailable",
        "StaleMetadata",
        "RequestTimedOutError",
        "KafkaTimeoutError",
        "NotCoordinatorError",
        "CoordinatorNotAvailableError",
        "GroupCoordinatorNotAvailableError",
        "CoordinatorLoadInProgressError",
        "NotLeaderForPartitionError",
        "LeaderNotAvailableError",
        "UnknownTopicOrPartitionError",  # transient while a topic's leaders are elected
        "NotEnoughReplicasError",
        "NotEnoughReplicasAfterAppendError",
        "BrokerNotAvailableError",
        "NotControllerError",
        "RebalanceInProgressError",
        "KafkaUnavailableError",
    }
)
AUTH_NAMES = frozenset(
    {
        "SaslAuthenticationFailed",
        "AuthenticationFailedError",
        "UnsupportedSaslMechanismError",
        "IllegalSaslStateError",
        "TopicAuthorizationFailedError",
        "GroupAuthorizationFailedError",
        "ClusterAuthorizationFailedError",
        "TransactionalIdAuthorizationFailed",
        "DelegationTokenAuthorizationFailed",
    }
)


def _names(exc: BaseException) -> set[str]:
    return {klass.__name__ for klass in type(exc).__mro__}


def _chain(exc: BaseException) -> list[BaseException]:
    """The error and what caused it (``raise … from``), outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = current.__cause__
    return chain


def classify(exc: BaseException) -> Kind:
    """Retriable, auth or fatal: the error itself, else what caused it (an admin error wraps a Kafka code)."""
    for error in _chain(exc):
        names = _names(error)
        if names & AUTH_NAMES or any(n.endswith(("AuthorizationFailed", "AuthorizationFailedError")) for n in names):
            return Kind.AUTH
        if names & RETRIABLE_NAMES or getattr(error, "retriable", False) or getattr(error, "invalid_metadata", False):
            return Kind.RETRIABLE
        if isinstance(error, (TimeoutError, ConnectionError)):  # the OS's: refused, reset; our own reads' timeouts
            return Kind.RETRIABLE
    return Kind.FATAL


def describe(exc: BaseException) -> str:
    """An error in one line: its class and message (never a traceback)."""
    name = type(exc).__name__
    text = " ".join(str(exc).split()).removeprefix(f"{name}: ")  # aiokafka's messages repeat the class name
    return f"{name}: {text}" if text and text != name else name


@dataclass(frozen=True)
class Patience:
    """How long the hub waits for a cluster to answer again: ``total_s`` from an outage's first failure (or
    ``max_attempts`` attempts, whichever ends first), with exponential backoff from ``first_delay_s`` up to
    ``max_delay_s`` and jitter (each delay drawn between half and all of its step)."""

    total_s: float = 120.0
    first_delay_s: float = 0.25
    max_delay_s: float = 5.0
    max_attempts: int = 1000

    def __post_init__(self) -> None:
        if not self.total_s >= 0:
            raise ValueError(f"patience must be 0 or more seconds, not {self.total_s!r}")

    def delay(self, failures: int, rng: random.Random) -> float:
        """The pause after the ``failures``-th failure in a row (1, 2, …)."""
        step = min(self.max_delay_s, self.first_delay_s * 2.0 ** max(0, failures - 1))
        return step / 2 + rng.uniform(0, step / 2)


@dataclass(frozen=True)
class Step:
    """What to do after a failure: log ``notice`` (if any), then wait ``delay_s``, or give up."""

    give_up: bool
    delay_s: float = 0.0
    notice: str | None = None


@dataclass
class Outage:
    """One outage of ``bootstrap`` as seen by one operation (``what``): from its first failure to its end."""

    what: str
    bootstrap: str
    patience: Patience
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    started_at: float | None = None
    failures: int = 0
    last_error: str = ""

    def failed(self, exc: BaseException, now: float) -> Step:
        """A retriable failure at ``now``: wait how long, or give up (the patience is spent)."""
        self.failures += 1
        self.last_error = describe(exc)
        first = self.started_at is None
        if self.started_at is None:
            self.started_at = now
        spent = now - self.started_at
        if self.failures >= self.patience.max_attempts or spent >= self.patience.total_s:
            return Step(give_up=True)
        # the last try comes when the patience ends, not before
        delay = min(self.patience.delay(self.failures, self.rng), self.patience.total_s - spent)
        notice = (
            f"Kafka at {self.bootstrap} is not answering ({self.what}): {self.last_error}; "
            f"retrying for up to {self.patience.total_s:.0f} s"
            if first
            else None
        )
        return Step(give_up=False, delay_s=delay, notice=notice)

    def recovered(self, now: float) -> str | None:
        """The notice that the outage is over (None when there was none)."""
        if self.started_at is None:
            return None
        return (
            f"Kafka at {self.bootstrap} answers again ({self.what}) after {now - self.started_at:.1f} s "
            f"and {self.failures} failed attempt(s)"
        )

    def gave_up(self, now: float) -> str:
        """The message a command ends with when the patience is spent."""
        spent = 0.0 if self.started_at is None else now - self.started_at
        return (
            f"the Kafka cluster at {self.bootstrap} did not answer ({self.what}) for {spent:.0f} s "
            f"after {self.failures} attempt(s) (patience {self.patience.total_s:.0f} s: BOSAI_KAFKA_PATIENCE_S "
            f"or --kafka-patience); last error: {self.last_error}"
        )
