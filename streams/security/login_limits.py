"""Failed-login limits for the hub's HTTP doors (pure: every call is given the time, in seconds).

Who is asking is a client address (behind trusted proxies, :func:`client_address`; IPv6 counted per /64,
what one subscriber usually holds) and a principal (a known user name or token id; every unknown name is
``?``, so made-up names cannot grow the tables). :class:`LoginLimiter` keeps failures in three tables:

- per (address, principal): a few free failures, then a growing delay, then refusal (429 with
  Retry-After) for a growing time;
- per address, whatever the principal: the same with higher thresholds (one address trying many names);
- per principal alone: only a delay, capped (``principal_max_delay_s``), never a refusal — an attacker
  elsewhere must not be able to lock a municipality out of its own feed during a typhoon.

And a fourth: successes per (address, principal). An address that logged in as a principal recently is
never refused for that principal and waits at most the principal's capped delay.

An attempt is counted as a failure when it is admitted (:meth:`LoginLimiter.attempt`), before its
credential is checked, so a burst of concurrent attempts is limited as it arrives; :meth:`succeeded`
or :meth:`cancel` (not checked after all: broker unreachable, no handshake to spare) take it back.

Memory is bounded: an entry is forgotten ``window_s`` after its last failure (once any refusal it
earned is over), and each table holds at most ``max_keys``; past that the least recently failed entry
that is not refusing now is evicted, so a flood of random addresses cannot evict the blocks of the
addresses that earned them.

:class:`HandshakeBudget` bounds what a door asks of the broker (SCRAM handshakes per second, in total),
keeping a reserve that suspect attempts cannot take.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Generic, TypeVar

UNKNOWN = "?"  # the principal key of every name the door does not know
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_EVICTION_SCAN = 16  # entries looked at, oldest first, for one that is not refusing now


@dataclass(frozen=True)
class LoginPolicy:
    """Thresholds (failures within ``window_s``) and delays; the defaults are the doors' defaults."""

    pair_free: int = 3  # failures of one (address, principal) before any delay
    pair_block_after: int = 10  # ... and before it is refused
    address_free: int = 10  # failures of one address, any principal
    address_block_after: int = 30
    principal_free: int = 10  # failures of one principal, any address: a capped delay only
    base_delay_s: float = 0.25  # the first delay; doubles with each failure after that
    max_delay_s: float = 8.0
    principal_max_delay_s: float = 1.0  # also the most a trusted address ever waits
    block_s: float = 60.0  # the first refusal; doubles with each failure after it
    max_block_s: float = 900.0
    window_s: float = 900.0  # failures are forgotten this long after the last one
    success_s: float = 86_400.0  # a success makes (address, principal) trusted this long
    max_keys: int = 10_000  # per table


@dataclass(frozen=True)
class Verdict:
    """What to do with one attempt: refuse it (``retry_after_s`` > 0), or wait ``delay_s`` and check it."""

    delay_s: float = 0.0
    retry_after_s: float = 0.0
    reason: str = ""  # why refused: pair | address
    trusted: bool = False  # this address logged in as this principal recently
    # may use the handshake reserve (see HandshakeBudget): its own credential that succeeded from this address
    # before, or a clean attempt (no failure of the pair, hardly any of the address, the principal not under
    # attack)
    privileged: bool = False

    @property
    def refused(self) -> bool:
        return self.retry_after_s > 0


@dataclass
class _Failures:
    count: int = 0
    last_s: float = 0.0


@dataclass
class _Success:
    at_s: float
    fingerprint: bytes


def _delay(failures: int, free: int, base_s: float, max_s: float) -> float:
    return 0.0 if failures < free else min(max_s, base_s * 2.0 ** min(failures - free, 60))


Key = TypeVar("Key", bound=Hashable)  # an address, a principal, or the pair of them


class _Table(Generic[Key]):
    """Failures per key, oldest last failure first; bounded by expiry and by ``max_keys``."""

    def __init__(self, policy: LoginPolicy, block_after: int | None):
        self.policy, self.block_after = policy, block_after
        self.entries: OrderedDict[Key, _Failures] = OrderedDict()

    def refusal_s(self, entry: _Failures, now_s: float) -> float:
        """Seconds this entry still refuses attempts (0: none)."""
        if self.block_after is None or entry.count < self.block_after:
            return 0.0
        p = self.policy
        duration = min(p.max_block_s, p.block_s * 2.0 ** min(entry.count - self.block_after, 60))
        return max(0.0, entry.last_s + duration - now_s)

    def _expired(self, entry: _Failures, now_s: float) -> bool:
        return now_s - entry.last_s >= self.policy.window_s and self.refusal_s(entry, now_s) == 0

    def count(self, key: Key, now_s: float) -> tuple[int, float]:
        """(failures, seconds of refusal left) of a key."""
        entry = self.entries.get(key)
        if entry is None:
            return 0, 0.0
        if self._expired(entry, now_s):
            del self.entries[key]
            return 0, 0.0
        return entry.count, self.refusal_s(entry, now_s)

    def add(self, key: Key, now_s: float) -> None:
        entry = self.entries.get(key)
        if entry is None:
            self._make_room(now_s)
            entry = self.entries[key] = _Failures()
        entry.count += 1
        entry.last_s = now_s
        self.entries.move_to_end(key)

    def take_back(self, key: Key) -> None:
        entry = self.entries.get(key)
        if entry is not None:
            entry.count -= 1
            if entry.count <= 0:
                del self.entries[key]

    def forget(self, key: Key) -> None:
        self.entries.pop(key, None)

    def purge(self, now_s: float, budget: int = 8) -> None:
        """Drop up to ``budget`` expired entries from the oldest end (amortised upkeep)."""
        for key in list(islice(self.entries, budget)):
            if self._expired(self.entries[key], now_s):
                del self.entries[key]

    def _make_room(self, now_s: float) -> None:
        self.purge(now_s, _EVICTION_SCAN)
        if len(self.entries) < self.policy.max_keys:
            return
        oldest = list(islice(self.entries, _EVICTION_SCAN))
        victim = next((k for k in oldest if self.refusal_s(self.entries[k], now_s) == 0), oldest[0])
        del self.entries[victim]


class LoginLimiter:
    """Failed logins per (address, principal), per address and per principal, with trusted successes."""

    def __init__(self, policy: LoginPolicy = LoginPolicy()):
        self.policy = policy
        self.pairs: _Table[tuple[str, str]] = _Table(policy, policy.pair_block_after)
        self.addresses: _Table[str] = _Table(policy, policy.address_block_after)
        self.principals: _Table[str] = _Table(policy, None)
        self.successes: OrderedDict[tuple[str, str], _Success] = OrderedDict()

    @property
    def tracked(self) -> int:
        """Entries held in all four tables (bounded by 4 × ``max_keys``)."""
        return sum(len(t.entries) for t in (self.pairs, self.addresses, self.principals)) + len(self.successes)

    def _success(self, address: str, principal: str, now_s: float) -> _Success | None:
        found = self.successes.get((address, principal))
        if found is not None and now_s - found.at_s >= self.policy.success_s:
            del self.successes[(address, principal)]
            return None
        return found

    def check(self, address: str, principal: str, now_s: float, fingerprint: bytes = b"") -> Verdict:
        """The verdict for an attempt now, counting nothing."""
        p = self.policy
        pair_failures, pair_refusal = self.pairs.count((address, principal), now_s)
        address_failures, address_refusal = self.addresses.count(address, now_s)
        principal_failures, _ = self.principals.count(principal, now_s)
        principal_delay = _delay(principal_failures, p.principal_free, p.base_delay_s, p.principal_max_delay_s)
        success = self._success(address, principal, now_s)
        if success is not None:
            delay = max(principal_delay, _delay(pair_failures, p.pair_free, p.base_delay_s, p.max_delay_s))
            matches = bool(fingerprint) and fingerprint == success.fingerprint
            return Verdict(
                delay_s=0.0 if matches else min(delay, p.principal_max_delay_s),
                trusted=True,
                privileged=matches or pair_failures == 0,
            )
        if pair_refusal > 0 or address_refusal > 0:
            reason = "pair" if pair_refusal >= address_refusal else "address"
            return Verdict(retry_after_s=max(pair_refusal, address_refusal), reason=reason)
        delay = max(
            _delay(pair_failures, p.pair_free, p.base_delay_s, p.max_delay_s),
            _delay(address_failures, p.address_free, p.base_delay_s, p.max_delay_s),
            principal_delay,
        )
        clean = pair_failures == 0 and address_failures < p.pair_free and principal_failures < p.principal_free
        return Verdict(delay_s=delay, privileged=clean)

    def attempt(self, address: str, principal: str, now_s: float, fingerprint: bytes = b"") -> Verdict:
        """The verdict for an attempt now; one admitted (not refused) counts as a failure until taken back."""
        verdict = self.check(address, principal, now_s, fingerprint)
        if not verdict.refused:
            self.pairs.add((address, principal), now_s)
            self.addresses.add(address, now_s)
            self.principals.add(principal, now_s)
        for table in (self.pairs, self.addresses, self.principals):
            table.purge(now_s)
        self._purge_successes(now_s)
        return verdict

    def cancel(self, address: str, principal: str) -> None:
        """An admitted attempt was not checked after all (no handshake to spare, broker unreachable)."""
        self.pairs.take_back((address, principal))
        self.addresses.take_back(address)
        self.principals.take_back(principal)

    def succeeded(
        self, address: str, principal: str, now_s: float, fingerprint: bytes = b"", *, admitted: bool = True
    ) -> None:
        """The attempt was right (``admitted=False``: answered from a cache, nothing was counted)."""
        self.pairs.forget((address, principal))
        if admitted:
            self.addresses.take_back(address)
            self.principals.take_back(principal)
        key = (address, principal)
        self.successes.pop(key, None)
        while len(self.successes) >= self.policy.max_keys:
            self.successes.popitem(last=False)
        self.successes[key] = _Success(now_s, fingerprint)

    def _purge_successes(self, now_s: float, budget: int = 8) -> None:
        for key in list(islice(self.successes, budget)):
            if now_s - self.successes[key].at_s >= self.policy.success_s:
                del self.successes[key]


class HandshakeBudget:
    """A token bucket of broker handshakes for one door: ``rate_per_s`` with a ``burst``, in total.

    Privileged attempts (a credential that succeeded from this address before, or a clean address
    asking for a principal not under attack) may take every token; the others leave ``reserve``.
    """

    def __init__(self, rate_per_s: float = 5.0, burst: float = 5.0, reserve: float = 2.0):
        if rate_per_s <= 0 or burst < 1 or not 0 <= reserve < burst:
            raise ValueError(f"handshake budget {rate_per_s}/s, burst {burst}, reserve {reserve}: not a budget")
        self.rate_per_s, self.burst, self.reserve = rate_per_s, burst, reserve
        self.tokens = burst
        self.updated_s: float | None = None  # when tokens were last counted

    def take(self, now_s: float, *, privileged: bool) -> float:
        """0 when a handshake may go now (and takes it), else the seconds before asking again."""
        if self.updated_s is not None:
            self.tokens = min(self.burst, self.tokens + max(0.0, now_s - self.updated_s) * self.rate_per_s)
        self.updated_s = now_s
        floor = 0.0 if privileged else self.reserve
        if self.tokens - 1.0 >= floor:
            self.tokens -= 1.0
            return 0.0
        return (floor + 1.0 - self.tokens) / self.rate_per_s


# -- client addresses ------------------------------------------------------------------------------


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses) of trusted proxies; ValueError names the one that is not."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP network (e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)") from None
    return tuple(networks)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":")[0]
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: Sequence[Network]) -> bool:
    return any(address.version == n.version and address in n for n in proxies)


def address_key(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, fallback: str = "unknown") -> str:
    """What the limits count: an IPv4 address, or the /64 of an IPv6 one (one subscriber's usual share)."""
    if address is None:
        return fallback
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


def client_address(peer: str | None, forwarded_for: Sequence[str], proxies: Sequence[Network]) -> str:
    """The client behind trusted proxies, as a limit key.

    X-Forwarded-For is read only when the peer is a trusted proxy; then, right to left, the first address
    that is not a trusted proxy is the client (everything left of it could be forged by the client). A
    malformed entry ends the walk at the last address a trusted proxy vouched for.
    """
    address = _ip(peer or "")
    if address is None or not _trusted(address, proxies):
        return address_key(address, fallback=peer or "unknown")
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        found = _ip(hop)
        if found is None:
            break
        address = found
        if not _trusted(found, proxies):
            break
    return address_key(address)
