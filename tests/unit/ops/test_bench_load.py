"""The benchmark's synthetic load: a valid pack with stations inside real boundaries, realistic values."""

from __future__ import annotations

from benchmarks.load import make_pack, readings
from streams.packs.region_pack import load_pack


def test_synthetic_pack_is_valid_and_every_station_lies_in_a_tochigi_municipality(project_root, tmp_path):
    pack = load_pack(
        make_pack(tmp_path / "p", stations=500, zones=50, seed=3, tochigi=project_root / "regions/tochigi")
    )

    assert len(pack.stations) == 500 and len(pack.zones) == 50
    codes = {m.code for m in pack.municipalities}
    assert all(s.municipality_code in codes for s in pack.stations.values())
    batch = pack.index.locate_many([s.lat for s in pack.stations.values()], [s.lon for s in pack.stations.values()])
    assert (batch.method == 1).all()  # contains, not the nearest fallback


def test_readings_cross_thresholds_at_the_requested_share():
    stations = [(f"B{i}", 36.5, 139.9) for i in range(100)]

    values = [r["measurements"][0]["value"] for r in readings(stations, 20_000, cross_share=0.05, seed=1)]

    share = sum(v >= 20 for v in values) / len(values)
    assert 0.04 < share < 0.06
    assert min(values) >= 0 and max(values) == 85.0


def test_the_bench_table_shows_a_run_drained_within_one_poll_as_untimed_not_a_crash():
    from benchmarks import pipeline

    machine = {"cores": 2, "python": "3.11", "kafka": "4.4.0", "faust": "0.15", "aiokafka": "0.14", "quixstreams": None}
    results = {
        "machine": machine,
        "readings": 5000,
        "cross_share": 0.05,
        "throughput": {"hub": None},
        "latency_ms": {},
        "latency_ms_2_workers": {},
        "scaling": {"1000": None},
        "scaling_zones": {"100": 6687},
        "quick": True,
    }

    table = pipeline.table(results)

    assert "stations -> readings/s:  1,000: untimed" in table
    assert "zones    -> readings/s:  100: 6,687" in table
