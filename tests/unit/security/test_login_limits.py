"""The login limits of the HTTP doors, as pure logic: time is passed in, nothing waits."""

from __future__ import annotations

import ipaddress
import pickle

import pytest

from streams.security.credential_cache import CredentialCache
from streams.security.login_limits import (
    UNKNOWN,
    HandshakeBudget,
    LoginLimiter,
    LoginPolicy,
    client_address,
    parse_networks,
)

POLICY = LoginPolicy()


def _fail(limiter: LoginLimiter, address: str, principal: str, now: float, times: int = 1) -> list:
    """Admit ``times`` attempts that turn out wrong (they stay counted); their verdicts."""
    return [limiter.attempt(address, principal, now) for _ in range(times)]


def test_one_address_guessing_one_principal_waits_longer_each_time_then_is_refused_with_retry_after():
    limiter = LoginLimiter(POLICY)

    verdicts = _fail(limiter, "203.0.113.9", "muni-09201", 100.0, times=11)

    delays = [v.delay_s for v in verdicts[:10]]
    assert delays[:3] == [0.0, 0.0, 0.0], "three free failures"
    assert delays[3:] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0], "then doubling, capped at max_delay_s"
    assert not any(v.refused for v in verdicts[:10])
    assert verdicts[10].refused and verdicts[10].reason == "pair"
    assert verdicts[10].retry_after_s == pytest.approx(POLICY.block_s)


def test_a_refusal_ends_when_its_time_is_over_and_the_next_failure_doubles_it():
    limiter = LoginLimiter(POLICY)
    _fail(limiter, "203.0.113.9", "muni-09201", 100.0, times=10)

    assert limiter.check("203.0.113.9", "muni-09201", 100.0 + POLICY.block_s - 1).refused
    after = limiter.attempt("203.0.113.9", "muni-09201", 100.0 + POLICY.block_s)
    again = limiter.check("203.0.113.9", "muni-09201", 100.0 + POLICY.block_s + 1)

    assert not after.refused and after.delay_s == POLICY.max_delay_s
    assert again.refused and again.retry_after_s == pytest.approx(2 * POLICY.block_s - 1)


def test_refused_attempts_are_not_counted_so_hammering_does_not_lengthen_the_refusal():
    limiter = LoginLimiter(POLICY)
    _fail(limiter, "203.0.113.9", "muni-09201", 100.0, times=10)

    for second in range(50):
        assert limiter.attempt("203.0.113.9", "muni-09201", 101.0 + second).refused

    assert not limiter.check("203.0.113.9", "muni-09201", 100.0 + POLICY.block_s).refused


def test_one_address_trying_many_principals_is_delayed_then_refused_as_an_address():
    limiter = LoginLimiter(POLICY)

    verdicts = [limiter.attempt("198.51.100.7", f"muni-{i:05d}", 50.0) for i in range(31)]

    assert all(v.delay_s == 0 for v in verdicts[:10])
    assert verdicts[10].delay_s == POLICY.base_delay_s
    assert not any(v.refused for v in verdicts[:30])
    assert verdicts[30].refused and verdicts[30].reason == "address"
    assert limiter.check("198.51.100.7", "pref-tochigi", 51.0).refused, "every principal, from that address"
    assert not limiter.check("198.51.100.8", "pref-tochigi", 51.0).refused, "and only that address"


def test_a_principal_attacked_from_many_addresses_only_gets_a_capped_delay_and_is_never_locked_out():
    limiter = LoginLimiter(POLICY)

    for i in range(5000):
        _fail(limiter, f"10.{i // 250}.{i % 250}.1", "muni-09201", 10.0 + i / 1000)
    fresh = limiter.check("192.0.2.50", "muni-09201", 16.0)

    assert not fresh.refused
    assert fresh.delay_s == POLICY.principal_max_delay_s
    assert not fresh.privileged, "a principal under attack: a new address does not take the handshake reserve"


def test_an_address_that_logged_in_recently_is_never_refused_for_that_principal():
    limiter = LoginLimiter(POLICY)
    limiter.attempt("192.0.2.10", "muni-09201", 0.0, b"right")
    limiter.succeeded("192.0.2.10", "muni-09201", 0.0, b"right")

    verdicts = [limiter.attempt("192.0.2.10", "muni-09201", 1.0 + i / 100, b"wrong") for i in range(200)]
    right = limiter.check("192.0.2.10", "muni-09201", 3.5, b"right")
    other = limiter.check("192.0.2.10", "pref-tochigi", 3.5)

    assert not any(v.refused for v in verdicts)
    assert max(v.delay_s for v in verdicts) == POLICY.principal_max_delay_s
    assert right.trusted and right.privileged and right.delay_s == 0.0, "its own credential: no wait, the reserve"
    assert other.refused, "the trust is for that principal only; the address itself is refused for the others"


def test_trust_ends_success_s_after_the_success():
    limiter = LoginLimiter(POLICY)
    limiter.succeeded("192.0.2.10", "muni-09201", 0.0, admitted=False)

    assert limiter.check("192.0.2.10", "muni-09201", POLICY.success_s - 1).trusted
    assert not limiter.check("192.0.2.10", "muni-09201", POLICY.success_s).trusted


def test_a_burst_of_concurrent_attempts_is_limited_as_it_arrives_before_any_is_checked():
    limiter = LoginLimiter(POLICY)

    admitted = [v for v in (limiter.attempt("203.0.113.9", "public", 5.0) for _ in range(200)) if not v.refused]

    assert len(admitted) == POLICY.pair_block_after


def test_a_success_or_a_cancelled_check_takes_its_attempt_back():
    limiter = LoginLimiter(POLICY)
    _fail(limiter, "203.0.113.9", "muni-09201", 1.0, times=9)
    limiter.attempt("203.0.113.9", "muni-09201", 1.0)
    limiter.cancel("203.0.113.9", "muni-09201")  # the broker could not be asked

    assert not limiter.check("203.0.113.9", "muni-09201", 1.0).refused
    limiter.attempt("203.0.113.9", "muni-09201", 1.0)
    limiter.succeeded("203.0.113.9", "muni-09201", 1.0)
    assert limiter.pairs.count(("203.0.113.9", "muni-09201"), 1.0) == (0, 0.0)
    assert limiter.addresses.count("203.0.113.9", 1.0)[0] == 9


def test_failures_are_forgotten_window_s_after_the_last_one():
    limiter = LoginLimiter(POLICY)
    _fail(limiter, "203.0.113.9", "muni-09201", 0.0, times=5)

    assert limiter.check("203.0.113.9", "muni-09201", POLICY.window_s - 1).delay_s > 0
    assert limiter.check("203.0.113.9", "muni-09201", POLICY.window_s).delay_s == 0
    for i in range(20):  # upkeep on later attempts drops expired entries
        limiter.attempt(f"192.0.2.{i}", "public", 2 * POLICY.window_s)
    assert ("203.0.113.9", "muni-09201") not in limiter.pairs.entries


def test_a_flood_of_random_addresses_and_names_cannot_grow_the_tables_nor_evict_an_earned_refusal():
    policy = LoginPolicy(max_keys=500)
    limiter = LoginLimiter(policy)
    _fail(limiter, "203.0.113.9", "muni-09201", 0.0, times=10)

    for i in range(20_000):
        address = str(ipaddress.IPv4Address(0x0A000000 + i))
        limiter.attempt(address, UNKNOWN, 1.0 + i / 10_000)
        if i % 7 == 0:
            limiter.succeeded(address, UNKNOWN, 1.0 + i / 10_000)

    assert limiter.tracked <= 4 * policy.max_keys
    assert limiter.check("203.0.113.9", "muni-09201", 5.0).refused
    assert len(pickle.dumps(limiter)) < 200_000


def test_the_handshake_budget_bounds_handshakes_per_second_and_keeps_a_reserve():
    budget = HandshakeBudget(rate_per_s=5.0, burst=5.0, reserve=2.0)

    suspect = sum(budget.take(0.0, privileged=False) == 0 for _ in range(100))
    privileged = sum(budget.take(0.0, privileged=True) == 0 for _ in range(100))
    waited = budget.take(0.0, privileged=True)
    over_ten_seconds = sum(budget.take(1.0 + t / 100, privileged=t % 2 == 0) == 0 for t in range(1000))

    assert (suspect, privileged) == (3, 2), "suspects leave the reserve to clients that logged in before"
    assert waited == pytest.approx(1 / 5)
    assert over_ten_seconds <= 5 * 10 + 5


@pytest.mark.parametrize(
    "peer, forwarded, expected",
    [
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  # not a trusted proxy: its header is not read
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # the client may prepend anything
        ("10.0.0.2", ["198.51.100.1, 10.0.0.3"], "198.51.100.1"),  # a chain of trusted proxies
        ("10.0.0.2", ["198.51.100.1", "10.0.0.3"], "198.51.100.1"),  # the header given twice
        ("10.0.0.2", ["10.0.0.4, 10.0.0.3"], "10.0.0.4"),  # only proxies: the left-most
        ("10.0.0.2", ["not-an-ip, 10.0.0.3"], "10.0.0.3"),  # garbage ends the walk at a vouched hop
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", ["198.51.100.1:4711"], "198.51.100.1"),
        ("10.0.0.2", ["[2001:db8:1:2::5]:443"], "2001:db8:1:2::/64"),
        ("2001:db8:aa:bb:1:2:3:4", [], "2001:db8:aa:bb::/64"),  # IPv6 counted per /64
        ("::ffff:203.0.113.9", [], "203.0.113.9"),
        (None, ["198.51.100.1"], "unknown"),
    ],
)
def test_the_client_address_is_the_right_most_untrusted_forwarded_hop_behind_trusted_proxies(peer, forwarded, expected):
    proxies = parse_networks(["10.0.0.0/8", "fd00::/8"])

    assert client_address(peer, forwarded, proxies) == expected


def test_a_trusted_proxy_that_is_not_a_network_is_refused_by_name():
    with pytest.raises(ValueError, match="'10.0.0.0/33' is not an IP network"):
        parse_networks(["10.0.0.0/33"])


def test_the_credential_cache_holds_keyed_hashes_never_the_password_and_forgets():
    password = "s3cret-Password-of-muni-09201"
    cache = CredentialCache(b"k" * 32, ok_s=30, refused_s=60, max_keys=100)
    other = CredentialCache(b"j" * 32, ok_s=30, refused_s=60)
    right = cache.fingerprint("muni-09201", password)

    cache.put(right, True, 0.0)
    cache.put(cache.fingerprint("muni-09201", "wrong"), False, 0.0)

    held = pickle.dumps(cache)
    assert password.encode() not in held and b"wrong" not in held
    assert right != other.fingerprint("muni-09201", password), "keyed: worthless outside the process"
    assert cache.get(right, 29.9) is True and cache.get(right, 30.0) is None
    assert cache.get(cache.fingerprint("muni-09201", "wrong"), 59.9) is False
    for i in range(1000):
        cache.put(cache.fingerprint("muni-09201", f"guess {i}"), False, 1.0)
    assert len(cache) <= 100
    assert password not in repr(cache)


def test_an_ok_cache_of_zero_seconds_remembers_no_success():
    cache = CredentialCache(b"k" * 32, ok_s=0, refused_s=60)
    right = cache.fingerprint("muni-09201", "pw")

    cache.put(right, True, 0.0)

    assert cache.get(right, 0.0) is None


def test_one_typo_from_an_office_does_not_make_its_other_principals_suspect_but_a_guessing_pair_is():
    limiter = LoginLimiter(POLICY)
    _fail(limiter, "192.0.2.10", "muni-09201", 1.0)

    assert limiter.check("192.0.2.10", "pref-tochigi", 1.0).privileged
    assert not limiter.check("192.0.2.10", "muni-09201", 1.0).privileged
    _fail(limiter, "192.0.2.10", "muni-09202", 1.0, times=2)
    assert not limiter.check("192.0.2.10", "pref-tochigi", 1.0).privileged, "an address with several failures"


@pytest.mark.parametrize("command", [["feed"], ["gateway", "--owners", "owners.yaml"]])
def test_a_trusted_proxy_option_that_is_not_a_network_is_refused_before_anything_starts(command):
    from click.testing import CliRunner

    from streams.cli import cli

    result = CliRunner().invoke(cli, [*command, "--trusted-proxy", "10.0.0.0/33"])

    assert result.exit_code == 2
    assert "'10.0.0.0/33' is not an IP network" in result.output
