"""The soak's figures, table and verdict (`bosai bench soak`); see :mod:`benchmarks.soak` for the bounds."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from statistics import mean

from benchmarks.soak import DAY_MS, DRAIN_LIMIT_S, FD_BAND, RSS_GROWTH_LIMIT, Soak
from benchmarks.soak_load import SHIFT_DAYS, window_ms
from streams.delivery.sink import routes_for
from streams.delivery.subscriptions import load_subscriptions
from streams.kernel.topics import HubTopics
from streams.platform import kafka
from streams.platform.avro import ALERT, AvroCodec, default_store
from streams.platform.topic_catalog import load_default_catalog

_STAMP = re.compile(r"(\d{8}T\d{4})JST")


def unshift_id(alert_id: str, days: int) -> str:
    """An alert id of a later loop moved back ``days`` (its episode start, <yyyymmdd>T<hhmm>JST)."""

    def back(match: re.Match) -> str:
        moment = dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M") - dt.timedelta(days=days)
        return moment.strftime("%Y%m%dT%H%M") + "JST"

    return _STAMP.sub(back, alert_id)


async def loop_signatures(soak: Soak) -> dict:
    """Each loop's alert events moved back to the first loop's time: (id, sequence, type, level, time, codes)."""
    catalog = load_default_catalog(soak.prefix)
    topics = [HubTopics.for_region(catalog, p).alerts for p in soak.packs]
    messages = await kafka.read_range(soak.bootstrap, {}, await kafka.end_offsets(soak.bootstrap, topics))
    codec, start = AvroCodec(default_store(), ALERT), window_ms()[0]
    loops: dict[int, list] = {}
    copies = Counter()
    for message in messages:
        record = codec.decode(message.value)
        loop = (record["observed_at"] - start) // (SHIFT_DAYS * DAY_MS)
        days = loop * SHIFT_DAYS
        copies[(record["alert_id"], record["sequence"])] += 1
        loops.setdefault(loop, []).append(
            (
                unshift_id(record["alert_id"], days),
                record["sequence"],
                record["msg_type"],
                record["level"],
                record["observed_at"] - days * DAY_MS,
                " ".join(record["municipality_codes"]),
            )
        )
    return {"loops": {k: sorted(v) for k, v in sorted(loops.items())}, "repeated": sum(n - 1 for n in copies.values())}


async def expected_deliveries(soak: Soak, subscriptions_file: Path) -> set[tuple[str, str, int]]:
    """(subscription, alert id, sequence) of every alert event on each subscription's topics."""
    catalog = load_default_catalog(soak.prefix)
    codec = AvroCodec(default_store(), ALERT)
    wanted = set()
    for route in routes_for(load_subscriptions(subscriptions_file, soak.packs), soak.packs, catalog):
        ends = await kafka.end_offsets(soak.bootstrap, route.topics)
        for message in await kafka.read_range(soak.bootstrap, {}, ends):
            record = codec.decode(message.value)
            wanted.add((route.subscription.id, record["alert_id"], record["sequence"]))
    return wanted


# -- figures ------------------------------------------------------------------------------------------


def process_figures(soak: Soak) -> dict[str, dict]:
    """Per process: RSS at warm-up and at the end, growth, descriptors and threads after warm-up."""
    warm_t = soak.warmup_end() or 0.0
    figures = {}
    for name in [*soak.pids, *soak.broker_pids]:
        live = [(s.t, s.procs.get(name)) for s in soak.samples if s.procs.get(name) is not None]
        after = [p for t, p in live if t >= warm_t]
        if len(after) < 3:
            figures[name] = {"samples_after_warmup": len(after)}
            continue
        warm_rss, end_rss = mean(p.rss_kb for p in after[:3]), mean(p.rss_kb for p in after[-3:])
        figures[name] = {
            "samples_after_warmup": len(after),
            "rss_first_mb": live[0][1].rss_kb / 1024,
            "rss_warmup_mb": warm_rss / 1024,
            "rss_end_mb": end_rss / 1024,
            "rss_max_mb": max(p.rss_kb for p in after) / 1024,
            "rss_growth": end_rss / warm_rss - 1,
            "fd_warmup": after[0].fds,
            "fd_min": min(p.fds for p in after),
            "fd_max": max(p.fds for p in after),
            "threads_min": min(p.threads for p in after),
            "threads_max": max(p.threads for p in after),
        }
    return figures


def lag_figures(soak: Soak, per_sample_input: float) -> dict:
    """Lag after warm-up while the input ran, halves compared; and whether it drained at the end."""
    warm_t = soak.warmup_end() or 0.0
    done_t = next((e["t"] - soak.started for e in soak.events if e["event"] == "finished"), soak.samples[-1].t)
    running = [sum(s.lag.values()) for s in soak.samples if warm_t <= s.t <= done_t]
    half = max(1, len(running) // 2)
    first, second = max(running[:half], default=0), max(running[half:], default=0)
    return {
        "max": max((sum(s.lag.values()) for s in soak.samples), default=0),
        "max_first_half": first,
        "max_second_half": second,
        "slack": per_sample_input,
        "growing": second > first + per_sample_input,
        "end": sum(soak.samples[-1].lag.values()),
        "by_group_max": {g: max(s.lag.get(g, 0) for s in soak.samples) for g in soak.samples[-1].lag},
        "committed_end": sum(soak.samples[-1].committed.values()),
        "input_messages": sum(e.get("messages", 0) for e in soak.events if e["event"] == "loop_done"),
    }


def verdict(soak: Soak, result: dict, figures: dict, lag: dict) -> list[tuple[bool, str]]:
    """Every bound and check as (passed, what was seen), in the order printed."""
    return _process_checks(figures) + _lag_checks(lag) + _hub_checks(result)


def _process_checks(figures: dict) -> list[tuple[bool, str]]:
    checks = []
    for name, f in figures.items():
        if "rss_growth" not in f:
            checks.append((False, f"{name}: only {f['samples_after_warmup']} samples after warm-up"))
            continue
        checks.append((f["rss_growth"] < RSS_GROWTH_LIMIT, f"{name}: RSS growth after warm-up {f['rss_growth']:+.1%}"))
        band = max(f["fd_max"] - f["fd_warmup"], f["fd_warmup"] - f["fd_min"])
        checks.append((band <= FD_BAND, f"{name}: descriptors {f['fd_min']}..{f['fd_max']} (warm-up {f['fd_warmup']})"))
    return checks


def _lag_checks(lag: dict) -> list[tuple[bool, str]]:
    growing = f"lag not growing: max {lag['max_first_half']} then {lag['max_second_half']} (slack {lag['slack']:.0f})"
    seen = f"the lag probe sees the groups: {lag['committed_end']:,} offsets committed, {lag['input_messages']:,} input"
    return [
        (not lag["growing"], growing),
        (lag["end"] == 0, f"everything consumed within {DRAIN_LIMIT_S:.0f} s of the last input: lag {lag['end']}"),
        (lag["committed_end"] >= lag["input_messages"] > 0, seen),
    ]


def _hub_checks(result: dict) -> list[tuple[bool, str]]:
    loops, repeated = result["signatures"]["loops"], result["signatures"]["repeated"]
    reference = loops.get(0, [])
    same = sum(loops.get(k) == reference for k in range(result["loops"]))
    clients = result["clients"]
    delivered = set(clients["deliveries"])
    missing = result["expected_deliveries"] - delivered
    errors = sum(clients["errors"].values())
    return [
        (
            same == result["loops"] and bool(reference),
            f"alerts deterministic: {same}/{result['loops']} loops equal the first moved back "
            f"({len(reference)} alert events a loop)",
        ),
        (repeated == 0, f"no alert event twice: {repeated}"),
        (
            not missing and bool(delivered) and not clients["refused"],
            f"webhooks: {len(delivered)} of {len(result['expected_deliveries'])} alert events delivered, "
            f"{sum(clients['deliveries'].values()) - len(delivered)} repeated, {clients['refused']} refused",
        ),
        (
            errors == 0 and clients["live_events"] > 0,
            f"readers: {clients['requests']} requests, {errors} errors, "
            f"{clients['live_events']} live events, {clients['live_reconnects']} reconnects",
        ),
    ]


def table(soak: Soak, figures: dict) -> list[str]:
    names = list(figures)
    warm_t = soak.warmup_end() or 0.0
    step = max(1, len(soak.samples) // 16)
    rows = sorted(
        set(range(0, len(soak.samples), step))
        | {len(soak.samples) - 1}
        | {next((i for i, s in enumerate(soak.samples) if s.t >= warm_t), 0)}
    )
    width = max(12, *(len(n) + 1 for n in names))
    out = [
        "RSS MB / open descriptors per process, consumer lag (messages); * = end of warm-up",
        f"{'t s':>6} {'loops':>5} " + "".join(f"{n:>{width}}" for n in names) + f"{'lag':>7}",
    ]
    marked = False
    for i in rows:
        s = soak.samples[i]
        cells = "".join(
            f"{(f'{p.rss_kb / 1024:.1f}/{p.fds}' if (p := s.procs.get(n)) else '-'):>{width}}" for n in names
        )
        star = "*" if s.t >= warm_t and not marked else " "
        marked = marked or star == "*"
        out.append(f"{s.t:>5.0f}{star} {s.loops_done:>5} {cells}{sum(s.lag.values()):>7}")
    out.append("")
    out.append(
        f"{'process':<18}{'RSS warm-up':>12}{'RSS end':>9}{'growth':>8}{'RSS max':>9}"
        f"{'fd warm-up':>11}{'fd min..max':>12}{'threads':>9}"
    )
    for name, f in figures.items():
        if "rss_growth" not in f:
            continue
        fds, threads = f"{f['fd_min']}..{f['fd_max']}", f"{f['threads_min']}..{f['threads_max']}"
        out.append(
            f"{name:<18}{f['rss_warmup_mb']:>12.1f}{f['rss_end_mb']:>9.1f}{f['rss_growth']:>+8.1%}"
            f"{f['rss_max_mb']:>9.1f}{f['fd_warmup']:>11}{fds:>12}{threads:>9}"
        )
    return out


def save(path: Path, soak: Soak, result: dict, figures: dict, lag: dict, checks: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "prefix": soak.prefix,
        "loops": result["loops"],
        "speed": result["speed"],
        "warmup_end_s": soak.warmup_end(),
        "processes": figures,
        "lag": lag,
        "clients": {k: v for k, v in result["clients"].items() if k != "deliveries"},
        "alert_events_per_loop": {k: len(v) for k, v in result["signatures"]["loops"].items()},
        "verdict": [{"ok": ok, "check": text} for ok, text in checks],
        "samples": [
            {
                "t": s.t,
                "loops_done": s.loops_done,
                "lag": s.lag,
                "procs": {n: (p.__dict__ if p else None) for n, p in s.procs.items()},
            }
            for s in soak.samples
        ],
    }
    path.write_text(json.dumps(document, indent=1, default=str), encoding="utf-8")
    return path
