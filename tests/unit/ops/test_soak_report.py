"""The soak's figures and verdict (`bosai bench soak`): pure logic over samples, no broker, no process."""

from __future__ import annotations

from pathlib import Path

from benchmarks.soak import Sample, Soak
from benchmarks.soak_load import shift_xml
from benchmarks.soak_report import lag_figures, process_figures, table, unshift_id, verdict
from benchmarks.soak_watch import ProcSample

STARTED = 1_000_000.0
STEP_S = 5.0
WARM_LOOP_DONE_S = 45.0  # warm-up ends 15 s later (WARMUP_SETTLE_S): at 60 s, sample 12 (0-based)


def _soak(
    rss_kb: list[int],
    fds: list[int],
    lag: list[int],
    *,
    finished_s: float | None = None,
    committed: int = 250,
    run_s: float = 0.0,
) -> Soak:
    """A soak of one worker and a broker sampled every 5 s: the worker's series as given, the broker flat; two
    loops of 100 input messages, ``committed`` offsets committed by the group at the end."""
    soak = Soak(
        bootstrap="-",
        admin_bootstrap="-",
        clients=("-", Path("-")),
        broker_pids={"broker": 2},
        work=Path("-"),
        pids={"worker-tochigi": 1},
        started=STARTED,
        run_s=run_s,
    )
    soak.events = [{"event": "loop_done", "t": STARTED + WARM_LOOP_DONE_S, "messages": 100}]
    soak.events.append({"event": "loop_done", "t": STARTED + 2 * WARM_LOOP_DONE_S, "messages": 100})
    finished_s = finished_s if finished_s is not None else STEP_S * (len(rss_kb) - 3)
    soak.events.append({"event": "finished", "t": STARTED + finished_s})
    for i, (rss, fd, messages) in enumerate(zip(rss_kb, fds, lag, strict=True)):
        procs = {"worker-tochigi": ProcSample(rss, fd, 12), "broker": ProcSample(900_000, 180, 90)}
        done = i * STEP_S >= WARM_LOOP_DONE_S
        soak.samples.append(Sample(i * STEP_S, 1 + done, procs, {"hub": messages}, {"hub": committed * done}))
    return soak


def _result(loops: int = 2, *, second_loop: list | None = None, delivered: int = 3) -> dict:
    first = [("tochigi-rain_1h-41277-20230904T1300JST", 0, "ALERT", "警戒レベル3相当", 0, "09201")]
    wanted = {("soak-utsunomiya", "a", s) for s in range(3)}
    return {
        "loops": loops,
        "signatures": {"loops": {0: first, 1: first if second_loop is None else second_loop}, "repeated": 0},
        "expected_deliveries": wanted,
        "clients": {
            "deliveries": {key: 1 for key in sorted(wanted)[:delivered]},
            "refused": 0,
            "requests": 400,
            "errors": {},
            "live_events": 30,
            "live_reconnects": 1,
        },
    }


def _checks(soak: Soak, result: dict | None = None, slack: float = 50) -> dict[str, bool]:
    figures = process_figures(soak)
    return {text: ok for ok, text in verdict(soak, result or _result(), figures, lag_figures(soak, slack))}


def _failed(checks: dict[str, bool]) -> list[str]:
    return [text for text, ok in checks.items() if not ok]


def test_a_flat_soak_passes_every_bound():
    n = 30
    soak = _soak([200_000] * 12 + [203_000] * (n - 12), [40] * n, [120, 80, 30, 0] * 7 + [0, 0])

    checks = _checks(soak)

    assert _failed(checks) == []
    assert any(text.startswith("worker-tochigi: RSS growth after warm-up +0.0%") for text in checks)


def test_memory_that_keeps_growing_after_warm_up_breaks_the_bound_even_when_warm_up_grew_more():
    n = 30
    rss = [100_000 + 20_000 * i for i in range(12)] + [340_000 + 2_000 * i for i in range(n - 12)]

    failed = _failed(_checks(_soak(rss, [40] * n, [0] * n)))

    assert failed == ["worker-tochigi: RSS growth after warm-up +8.8%"]  # 342 MB -> 372 MB (means of three)


def test_growth_is_measured_from_the_end_of_warm_up_not_from_the_start():
    n = 30
    rss = [100_000 + 20_000 * i for i in range(12)] + [340_000] * (n - 12)

    assert _failed(_checks(_soak(rss, [40] * n, [0] * n))) == []


def test_descriptors_six_above_warm_up_break_the_bound_five_do_not():
    n = 30
    within = [40] * 12 + [45] * (n - 12)
    beyond = [40] * 12 + [40] * 10 + [46] * (n - 22)

    assert _failed(_checks(_soak([200_000] * n, within, [0] * n))) == []
    assert _failed(_checks(_soak([200_000] * n, beyond, [0] * n))) == [
        "worker-tochigi: descriptors 40..46 (warm-up 40)"
    ]


def test_a_long_run_warms_up_past_the_first_close_of_idle_connections_a_short_one_does_not():
    n = 360  # 30 minutes of samples; idle start-up connections closed at 542 s (as the broker's 9 in the soak)
    fds = [29 if i * STEP_S < 542 else 20 for i in range(n)]

    long_run = _soak([200_000] * n, fds, [0] * n, run_s=1800)
    short_run = _soak([200_000] * n, fds, [0] * n, run_s=120)

    assert long_run.warmup_end() == 660 and short_run.warmup_end() == 60
    assert _failed(_checks(long_run)) == []
    assert _failed(_checks(short_run)) == ["worker-tochigi: descriptors 20..29 (warm-up 29)"]


def test_lag_that_climbs_through_the_run_is_growing_and_lag_left_at_the_end_is_reported():
    n = 30
    climbing = [10 * i for i in range(n - 1)] + [400]

    failed = _failed(_checks(_soak([200_000] * n, [40] * n, climbing), slack=50))

    assert any(t.startswith("lag not growing") for t in failed)
    assert any(t.startswith("everything consumed") and t.endswith("lag 400") for t in failed)


def test_lag_spikes_within_one_sample_of_input_are_not_growth():
    n = 30
    spiky = [0, 300, 0, 280, 0, 320] * 4 + [0, 290, 0, 310, 0, 0]

    figures = lag_figures(_soak([200_000] * n, [40] * n, spiky), per_sample_input=50)

    assert figures["growing"] is False and figures["max"] == 320 and figures["end"] == 0


def test_no_lag_from_a_probe_that_saw_no_group_commit_anything_fails():
    n = 30

    failed = _failed(_checks(_soak([200_000] * n, [40] * n, [0] * n, committed=0)))

    assert failed == ["the lag probe sees the groups: 0 offsets committed, 200 input"]


def test_a_process_sampled_too_few_times_after_warm_up_fails_rather_than_passing_unmeasured():
    n = 14  # warm-up ends at sample 12: two samples after it
    soak = _soak([200_000] * n, [40] * n, [0] * n, finished_s=60)

    failed = _failed(_checks(soak))

    assert failed == ["worker-tochigi: only 2 samples after warm-up", "broker: only 2 samples after warm-up"]


def test_a_loop_whose_alerts_differ_from_the_first_moved_back_and_a_missed_webhook_fail():
    n = 30
    other = [("tochigi-rain_1h-41277-20230904T1400JST", 0, "ALERT", "警戒レベル3相当", 0, "09201")]

    failed = _failed(_checks(_soak([200_000] * n, [40] * n, [0] * n), _result(second_loop=other, delivered=2)))

    assert [t.split(":")[0] for t in failed] == ["alerts deterministic", "webhooks"]
    assert "1/2 loops" in failed[0] and "2 of 3 alert events delivered" in failed[1]


def test_the_table_marks_the_end_of_warm_up_and_lists_every_process():
    n = 30
    soak = _soak([200_000] * n, [40] * n, [0] * n)

    lines = table(soak, process_figures(soak))

    assert "worker-tochigi" in lines[1] and "broker" in lines[1]
    assert sum(line[5:6] == "*" for line in lines[2:]) == 1
    assert next(line for line in lines if line[5:6] == "*").lstrip().startswith("60*")


def test_an_alert_id_moved_a_loop_later_moves_back_to_the_first_loops_id():
    assert unshift_id("tochigi-rain_1h-41277-20230918T1300JST", 14) == "tochigi-rain_1h-41277-20230904T1300JST"
    assert unshift_id("kanagawa-landslide-14382-20230102T0100JST", 7) == "kanagawa-landslide-14382-20221226T0100JST"


def test_every_datetime_of_a_report_moves_by_whole_days_keeping_its_offset_and_format():
    xml = b"<a>2024-11-02T18:50:00+09:00</a><b>2024-11-02T09:50:00Z</b><c>2024-11-02T18:50:00.5+09:00</c>"

    moved = shift_xml(xml, 7)

    assert (
        moved == b"<a>2024-11-09T18:50:00+09:00</a><b>2024-11-09T09:50:00Z</b><c>2024-11-09T18:50:00.500000+09:00</c>"
    )
