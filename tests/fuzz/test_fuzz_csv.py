"""CSV files: AMeDAS observations (``bosai replay --csv``) and a region pack's stations, JMA area and Orion tables.
Whatever a file holds — any bytes, any encoding, gzip or broken gzip, short and long rows, quotes, NUL, huge
fields — the loader gives records or ConfigErrors naming the file, the row and what was expected."""

from __future__ import annotations

import csv
import gzip
import io
import tempfile
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from streams.kernel.errors import ConfigError
from streams.observed.amedas_csv import read_amedas
from streams.packs.jma_area_files import load_area_table
from streams.packs.station_file import STATION_COLUMNS, load_stations
from streams.platform.checks import Problems
from tests.support.fuzz_contract import check
from tests.support.fuzz_profiles import examples
from tests.support.fuzz_strategies import awkward_text, dates, mutated, numbers

AMEDAS_COLUMNS = [
    "observed_at",
    "station_id",
    "name_ja",
    "name_en",
    "lat",
    "lon",
    "alt_m",
    "precip_1h_mm",
    "precip_24h_mm",
]
AMEDAS_ROW = ["2023-09-04T13:00:00+09:00", "41277", "宇都宮", "Utsunomiya", "36.548", "139.868", "119", "55.5", "80"]
cells = st.one_of(
    awkward_text, dates, numbers.map(str), st.sampled_from(['"', '""', "\n", "\r", ",", "\x00", "x" * 200_000, "", " "])
)


@st.composite
def csv_texts(draw, columns: list[str], good_row: list[str]) -> str:
    """A header (sometimes with columns missing or extra) and rows near a good one: cells replaced, short, long."""
    header = draw(
        st.just(columns) | st.permutations(columns) | st.lists(st.sampled_from(columns), max_size=len(columns))
    )
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        row = dict(zip(columns, good_row, strict=True))
        for key in draw(st.lists(st.sampled_from(columns), max_size=3, unique=True)):
            row[key] = draw(cells)
        values = [row.get(c, "") for c in header]
        cut = draw(st.sampled_from([None, None, None, 0, 1, len(values) - 1]))
        values = values[:cut] if cut is not None else values + draw(st.lists(cells, max_size=2))
        rows.append(values)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def file_bytes(texts: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    encoded = texts.map(lambda t: t.encode("utf-8", "surrogatepass"))
    return st.one_of(
        encoded, encoded.flatmap(mutated), texts.map(lambda t: t.encode("utf-16")), st.binary(max_size=200)
    )


def _on_disk(data: bytes, name: str):
    folder = tempfile.TemporaryDirectory(prefix="bosai-fuzz-")
    path = Path(folder.name) / name
    path.write_bytes(data)
    return folder, path


# -- AMeDAS observations ------------------------------------------------------------------------------------------
@settings(max_examples=examples(200))
@given(data=file_bytes(csv_texts(AMEDAS_COLUMNS, AMEDAS_ROW)), gz=st.sampled_from(["plain", "gzip", "broken gzip"]))
@example(data=b"observed_at,station_id,lat,lon,precip_1h_mm,precip_24h_mm\n2023-09-04T13:00+09:00,1\n", gz="plain")
@example(data=b"\xff\xfe\x00garbage", gz="plain")
@example(data=b"observed_at,station_id,lat,lon,precip_1h_mm,precip_24h_mm\n" + b"x" * 200_000, gz="plain")
@example(data=b"observed_at,station_id,lat,lon,precip_1h_mm,precip_24h_mm\n2023-09-04T13:00,1,36,139,1,1\n", gz="plain")
@example(data=b"observed_at,station_id,lat,lon,precip_1h_mm,precip_24h_mm\n", gz="broken gzip")
def test_any_amedas_csv_gives_readings_or_a_config_error_naming_the_file(data, gz):
    if gz == "gzip":
        data = gzip.compress(data)
    elif gz == "broken gzip":
        data = gzip.compress(data)[:-6]
    folder, path = _on_disk(data, "amedas.csv.gz" if gz != "plain" else "amedas.csv")
    with folder:
        result = check("csv.amedas", lambda: read_amedas(path), ConfigError, shown=(data, gz))
    if isinstance(result, ConfigError):
        assert result.file == str(path)
    else:
        assert all(r["observed_at"] == int(r["observed_at"]) for r in result)


# -- a region pack's tables ---------------------------------------------------------------------------------------
STATION_ROW = ["41277", "rain_gauge", "宇都宮", "Utsunomiya", "36.548", "139.868", "119", "public", ""]


@settings(max_examples=examples(200))
@given(data=file_bytes(csv_texts(list(STATION_COLUMNS), STATION_ROW)))
@example(data=b"station_id,lat,lon,name_ja\n41277\n")  # a short row: the missing cells are None
@example(data=b"station_id,lat,lon,name_ja\n41277,36.5,139.8," + b"x" * 200_000 + b"\n")  # past csv's field limit
@example(data="station_id,lat,lon,name_ja\n41277,36.5,139.8,宇都宮\n".encode("cp932"))  # Shift_JIS from Excel
def test_any_stations_csv_gives_stations_or_problems_naming_the_file(data):
    folder, path = _on_disk(data, "stations.csv")
    problems = Problems()
    with folder:
        check("csv.stations", lambda: load_stations(path, problems), (), shown=data)
    assert all(isinstance(p, ConfigError) and p.file == str(path) for p in problems.items)


AREA_COLUMNS = ["jma_code", "jma_name", "municipality_codes", "source"]


@settings(max_examples=examples(100))
@given(data=file_bytes(csv_texts(AREA_COLUMNS, ["0920100", "宇都宮市", "09201", "jma"])))
@example(data="jma_code,jma_name,municipality_codes,source\n0920100,宇都宮市,09201,jma\n".encode("cp932"))
def test_any_jma_area_table_gives_rows_or_problems_naming_the_file(data):
    folder, path = _on_disk(data, "jma_areas.csv")
    problems = Problems()
    with folder:
        check("areas_of(csv)", lambda: load_area_table(path, "09", {"09201"}, problems), (), shown=data)
    assert all(isinstance(p, ConfigError) and p.file == str(path) for p in problems.items)
