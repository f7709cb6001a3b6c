"""A region pack's JMA area tables (``jma_areas.csv``, ``jma_forecast_areas.csv``), read and checked.

Both tables are optional and hold only the codes the general rules do not cover (see
:mod:`streams.official.areas`): the parts of cities JMA splits and renumbered municipalities (7-digit
市町村等 codes), and 府県予報区・細分区域 codes that cover part of the prefecture (6 digits). Columns:
``jma_code`` (or ``forecast_code``), the JMA name, ``municipality_codes`` (5-digit JIS codes of the
pack, space-separated) and ``source`` (where the mapping comes from; required). Every problem names
the file, the row and the key, and what was expected.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path

from streams.kernel.region import AreaRow
from streams.platform.checks import Problems, read_csv

MUNICIPAL_COLUMNS = ("jma_code", "jma_name", "municipality_codes", "source")
FORECAST_COLUMNS = ("forecast_code", "name", "municipality_codes", "source")
_SEVEN = re.compile(r"^\d{7}$")
_SIX = re.compile(r"^\d{6}$")


def reference_table_path(root: Path, forecast: bool = False) -> Path:
    """The hub's reference table that ``region init`` copies a prefecture's rows from (``jma/``)."""
    return root / "jma" / ("forecast_areas.csv" if forecast else "areas.csv")


def _rows(path: Path, columns: tuple[str, ...], problems: Problems) -> list[tuple[int, dict[str, str]]]:
    header, rows = read_csv(path, problems, expected=f"a CSV with columns {', '.join(columns)}")
    if not header and problems:
        return []
    missing = set(columns) - set(header)
    if missing:
        problems.add(path, f"missing columns {sorted(missing)}", where="header", expected=", ".join(columns))
        return []
    return [(n, {k: v.strip() for k, v in row.items()}) for n, row in rows]


def load_area_table(
    path: Path, prefecture_code: str, known_codes: Iterable[str], problems: Problems, *, forecast: bool = False
) -> list[AreaRow]:
    """The rows of one JMA area table; problems recorded (file, row, key, expectation)."""
    columns = FORECAST_COLUMNS if forecast else MUNICIPAL_COLUMNS
    code_key, name_key = columns[0], columns[1]
    pattern, digits = (_SIX, 6) if forecast else (_SEVEN, 7)
    known = set(known_codes)
    rows: list[AreaRow] = []
    seen: dict[str, int] = {}
    for number, row in _rows(path, columns, problems):
        code = row.get(code_key, "")
        where = f"row {number} {code_key}={code!r}"
        if not pattern.match(code) or not code.startswith(prefecture_code):
            problems.add(
                path,
                f"{code_key} is {code!r}",
                where=where,
                expected=f"a {digits}-digit code of prefecture {prefecture_code}",
            )
            continue
        if code in seen:
            problems.add(
                path,
                f"duplicate {code_key} {code} (first on row {seen[code]})",
                where=where,
                expected="one row per code",
            )
            continue
        seen[code] = number
        codes = tuple(row.get("municipality_codes", "").split())
        unknown = [c for c in codes if c not in known]
        if not codes or unknown:
            problems.add(
                path,
                f"municipality_codes {unknown or row.get('municipality_codes')!r} are not this pack's",
                where=f"{where} municipality_codes",
                expected="5-digit JIS codes of the pack's municipalities or designated cities, space-separated",
            )
            continue
        if not row.get("source"):
            problems.add(path, "no source", where=f"{where} source", expected="where this mapping comes from")
            continue
        rows.append(AreaRow(code, row.get(name_key, ""), codes, row["source"]))
    return rows


def rows_for_prefecture(path: Path, prefecture_code: str, *, forecast: bool = False) -> list[dict[str, str]]:
    """The reference table's rows of one prefecture, as CSV rows (for ``region init``)."""
    problems = Problems()
    columns = FORECAST_COLUMNS if forecast else MUNICIPAL_COLUMNS
    return [row for _, row in _rows(path, columns, problems) if row.get(columns[0], "").startswith(prefecture_code)]


def write_area_table(path: Path, rows: list[dict[str, str]], *, forecast: bool = False) -> None:
    columns = FORECAST_COLUMNS if forecast else MUNICIPAL_COLUMNS
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
