"""Kafka client errors told apart in one place, and the patience with a cluster: retried through an outage,
logged once when it begins and once when it ends, ended with exit 3 when the patience is spent."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiokafka import errors as kafka_errors

from streams.kernel.errors import ClusterUnavailable, ExitCode, KafkaAccessDenied, SettingsError
from streams.platform.kafka_errors import Kind, Outage, Patience, classify
from streams.platform.kafka_protocol import AdminRequestError, raise_for
from streams.platform.kafka_retry import ENV_PATIENCE, patience_from_env, patiently


@pytest.mark.parametrize(
    "error",
    [
        kafka_errors.NodeNotReadyError("node 2"),
        kafka_errors.KafkaConnectionError("refused"),
        kafka_errors.RequestTimedOutError(),
        kafka_errors.NotCoordinatorError(),
        kafka_errors.CoordinatorNotAvailableError(),
        kafka_errors.CoordinatorLoadInProgressError(),
        kafka_errors.NotLeaderForPartitionError(),
        kafka_errors.LeaderNotAvailableError(),
        kafka_errors.UnknownTopicOrPartitionError(),
        kafka_errors.KafkaTimeoutError(),
        kafka_errors.NotEnoughReplicasError(),
        TimeoutError("could not read 1 partition(s) to their end within 10 s"),
        ConnectionRefusedError(111, "Connection refused"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_what_a_node_loss_or_an_election_raises_is_retriable(error):
    assert classify(error) is Kind.RETRIABLE


@pytest.mark.parametrize(
    "error",
    [
        kafka_errors.SaslAuthenticationFailed(),
        kafka_errors.TopicAuthorizationFailedError(),
        kafka_errors.GroupAuthorizationFailedError(),
        kafka_errors.ClusterAuthorizationFailedError(),
        kafka_errors.TransactionalIdAuthorizationFailed(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_refused_credential_or_operation_is_auth(error):
    assert classify(error) is Kind.AUTH


@pytest.mark.parametrize(
    "error", [ValueError("bad"), kafka_errors.ProducerFenced(), kafka_errors.IllegalStateError(), KeyError("x")]
)
def test_the_rest_is_fatal(error):
    assert classify(error) is Kind.FATAL


def test_an_admin_error_is_told_by_the_kafka_code_it_wraps():
    with pytest.raises(AdminRequestError) as leader_lost:
        raise_for(5, "electing", "CreateAcls")
    with pytest.raises(AdminRequestError) as refused:
        raise_for(31, None, "CreateAcls")
    assert classify(leader_lost.value) is Kind.RETRIABLE
    assert classify(refused.value) is Kind.AUTH


def test_backoff_doubles_up_to_its_cap_with_jitter_between_half_and_all_of_the_step():
    patience = Patience(120.0, first_delay_s=0.25, max_delay_s=5.0)
    rng = random.Random(7)
    delays = [patience.delay(n, rng) for n in range(1, 10)]
    steps = [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]
    assert all(step / 2 <= d <= step for d, step in zip(delays, steps, strict=True))
    assert delays == [Patience(120.0).delay(n, r) for r in [random.Random(7)] for n in range(1, 10)]  # seeded


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _flaky(failures: list[BaseException], result: str = "ok"):
    calls = {"n": 0}

    async def call() -> str:
        calls["n"] += 1
        if failures:
            raise failures.pop(0)
        return result

    return call, calls


def _run(call, clock: Clock, notices: list[str], patience: Patience | None = None):
    return asyncio.run(
        patiently(
            "reading end offsets",
            "127.0.0.1:9092",
            call,
            patience=patience or Patience(120.0),
            clock=clock,
            sleep=clock.sleep,
            rng=random.Random(1),
            notify=notices.append,
        )
    )


def test_an_outage_is_retried_through_and_logged_once_when_it_begins_and_once_when_it_ends():
    clock, notices = Clock(), []
    call, calls = _flaky([kafka_errors.NodeNotReadyError("node 2")] * 6)

    assert _run(call, clock, notices) == "ok"

    assert calls["n"] == 7 and len(clock.slept) == 6
    assert len(notices) == 2
    assert notices[0].startswith("Kafka at 127.0.0.1:9092 is not answering (reading end offsets): NodeNotReadyError")
    assert "answers again" in notices[1] and "6 failed attempt(s)" in notices[1]


def test_no_outage_no_notice():
    clock, notices = Clock(), []
    call, _ = _flaky([])
    assert _run(call, clock, notices) == "ok"
    assert notices == [] and clock.slept == []


def test_a_spent_patience_ends_the_command_with_exit_3_naming_the_bootstrap_and_the_last_error():
    clock, notices = Clock(), []
    call, calls = _flaky([kafka_errors.KafkaConnectionError("Unable to bootstrap")] * 1000)

    with pytest.raises(ClusterUnavailable) as ended:
        _run(call, clock, notices, Patience(30.0))

    assert ended.value.exit_code == ExitCode.CLUSTER_UNAVAILABLE == 3
    message = str(ended.value)
    assert "127.0.0.1:9092" in message and "KafkaConnectionError: Unable to bootstrap" in message
    assert "BOSAI_KAFKA_PATIENCE_S" in message
    assert clock.now - 1000.0 <= 30.0  # never waits past the patience
    assert 5 < calls["n"] < 30 and len(notices) == 1


def test_bounded_attempts_end_it_too():
    clock, notices = Clock(), []
    call, calls = _flaky([kafka_errors.RequestTimedOutError()] * 100)
    with pytest.raises(ClusterUnavailable):
        _run(call, clock, notices, Patience(1e6, max_attempts=4))
    assert calls["n"] == 4


def test_an_auth_error_ends_at_once_with_what_to_check_and_a_fatal_one_is_raised_as_it_is():
    clock, notices = Clock(), []
    call, calls = _flaky([kafka_errors.TopicAuthorizationFailedError()])
    with pytest.raises(KafkaAccessDenied) as denied:
        _run(call, clock, notices)
    assert calls["n"] == 1 and "BOSAI_KAFKA_CONFIG" in str(denied.value)
    assert denied.value.exit_code == ExitCode.FAILED

    call, calls = _flaky([ValueError("a bug")])
    with pytest.raises(ValueError):
        _run(call, clock, notices)
    assert calls["n"] == 1 and clock.slept == []


def test_a_patience_of_zero_gives_up_at_the_first_failure():
    outage = Outage("x", "b:1", Patience(0.0), random.Random(0))
    assert outage.failed(kafka_errors.NodeNotReadyError(), 5.0).give_up


def test_the_patience_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(ENV_PATIENCE, raising=False)
    assert patience_from_env().total_s == 120.0
    monkeypatch.setenv(ENV_PATIENCE, "15")
    assert patience_from_env().total_s == 15.0
    monkeypatch.setenv(ENV_PATIENCE, "soon")
    with pytest.raises(SettingsError, match="BOSAI_KAFKA_PATIENCE_S"):
        patience_from_env()
