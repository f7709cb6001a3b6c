"""The feed checks a login with any node of the clients listener: a lost node leaves the others to ask."""

from __future__ import annotations

import asyncio

import pytest

from streams.delivery import feed_server
from streams.delivery.feed_server import CredentialChecker, handshake_order, listener_addresses
from streams.platform import kafka, tls


def test_listener_addresses_are_every_node_in_order():
    assert listener_addresses("127.0.0.1:9093,127.0.0.1:9094, [::1]:9095") == [
        ("127.0.0.1", 9093),
        ("127.0.0.1", 9094),
        ("[::1]", 9095),
    ]
    with pytest.raises(ValueError):
        listener_addresses("127.0.0.1")


def test_the_node_that_answered_last_is_asked_first_then_the_others_in_turn():
    assert handshake_order(3, 0) == [0, 1, 2]
    assert handshake_order(3, 2) == [2, 0, 1]
    assert handshake_order(1, 0) == [0]


def test_a_login_is_checked_with_the_next_node_when_one_is_lost(tmp_path, monkeypatch):
    asked: list[int] = []

    async def scram_login(host, port, ssl_context, username, password):
        asked.append(port)
        if port == 9093:  # the lost node
            raise kafka.LoginUnavailable(f"SCRAM handshake with {host}:{port} failed: ConnectionRefusedError")
        return password == "right"

    monkeypatch.setattr(feed_server.kafka, "scram_login", scram_login)
    checker = CredentialChecker("127.0.0.1:9093,127.0.0.1:9094", tls.ensure_ca(tmp_path / "tls").cert_file, cache_s=0)

    assert asyncio.run(checker._login("pref-tochigi", "right")) is True
    assert asyncio.run(checker._login("pref-tochigi", "wrong")) is False
    assert asked == [9093, 9094, 9094]  # the node that answered is asked first from then on


def test_no_node_answering_is_unavailable_not_a_wrong_password(tmp_path, monkeypatch):
    async def scram_login(host, port, ssl_context, username, password):
        raise kafka.LoginUnavailable(f"SCRAM handshake with {host}:{port} failed: ConnectionRefusedError")

    monkeypatch.setattr(feed_server.kafka, "scram_login", scram_login)
    checker = CredentialChecker("127.0.0.1:9093,127.0.0.1:9094", tls.ensure_ca(tmp_path / "tls").cert_file)

    with pytest.raises(kafka.LoginUnavailable):
        asyncio.run(checker._login("pref-tochigi", "right"))
