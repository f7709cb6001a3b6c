"""A region pack's JMA area tables, read and checked (written by :mod:`streams.packs.jma_pack_tables`).

Every table is optional, CSV, one row per JMA code, each row with its ``source`` (where the mapping comes
from: required, so an operator's correction says who made it and why):

* ``jma_areas.csv`` — 7-digit 市町村等 codes the general rule (JIS code + ``00``; a designated city whole) does
  not cover: parts of cities (1410011 横浜市北部, 0410001 仙台市東部), renumbered or newer municipalities.
  Columns ``jma_code``, ``jma_name``, ``municipality_codes`` (5-digit JIS codes of the pack, space-separated),
  ``source``.
* ``jma_forecast_areas.csv`` — 6-digit 府県予報区・細分区域 codes, an operator's overrides of what the hierarchy
  gives: ``forecast_code``, ``name``, ``municipality_codes``, ``source``.
* ``jma_forecast_hierarchy.csv`` — JMA's forecast-area hierarchy for the prefecture, one row per 市町村等:
  ``jma_code``, ``jma_name``, ``group_code`` / ``group_name`` (市町村等をまとめた地域), ``first_code`` /
  ``first_name`` (一次細分区域), ``pref_code`` / ``pref_name`` (府県予報区), ``source``.
* ``jma_earthquake_areas.csv`` — 3-digit 地震情報／細分区域 codes: ``area_code``, ``name``, ``municipality_codes``,
  ``source``.
* ``jma_tsunami_areas.csv`` — 3-digit 津波予報区 codes and the pack's coastal municipalities on them:
  ``area_code``, ``name``, ``municipality_codes``, ``source``.

Every problem names the file, the row and the key, and what was expected.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from streams.kernel.region import AreaRow, HierarchyRow
from streams.platform.checks import Problems, read_csv

MUNICIPAL_COLUMNS = ("jma_code", "jma_name", "municipality_codes", "source")
FORECAST_COLUMNS = ("forecast_code", "name", "municipality_codes", "source")
AREA_COLUMNS = ("area_code", "name", "municipality_codes", "source")
HIERARCHY_COLUMNS = (
    "jma_code",
    "jma_name",
    "group_code",
    "group_name",
    "first_code",
    "first_name",
    "pref_code",
    "pref_name",
    "source",
)
_SEVEN = re.compile(r"^\d{7}$")
_SIX = re.compile(r"^\d{6}$")
_THREE = re.compile(r"^\d{3}$")


@dataclass(frozen=True)
class TableSpec:
    """What one kind of table holds: its columns, the shape of its codes, whether they start with the prefecture's."""

    columns: tuple[str, ...]
    pattern: re.Pattern[str]
    what: str  # e.g. "a 7-digit 市町村等 code"
    own_prefix: bool


MUNICIPAL = TableSpec(MUNICIPAL_COLUMNS, _SEVEN, "a 7-digit 市町村等 code", True)
FORECAST = TableSpec(FORECAST_COLUMNS, _SIX, "a 6-digit 府県予報区・細分区域 code", True)
EARTHQUAKE = TableSpec(AREA_COLUMNS, _THREE, "a 3-digit 地震情報／細分区域 code", False)
TSUNAMI = TableSpec(AREA_COLUMNS, _THREE, "a 3-digit 津波予報区 code", False)
# region.yaml files.<key> -> (spec, file name region init writes)
TABLES = {
    "jma_areas": (MUNICIPAL, "jma_areas.csv"),
    "jma_forecast_areas": (FORECAST, "jma_forecast_areas.csv"),
    "jma_earthquake_areas": (EARTHQUAKE, "jma_earthquake_areas.csv"),
    "jma_tsunami_areas": (TSUNAMI, "jma_tsunami_areas.csv"),
}
HIERARCHY_KEY, HIERARCHY_FILE = "jma_forecast_hierarchy", "jma_forecast_hierarchy.csv"


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
    return [(n, {k: (v or "").strip() for k, v in row.items()}) for n, row in rows]


def _code_ok(path: Path, code: str, where: str, spec: TableSpec, prefecture_code: str, problems: Problems) -> bool:
    if spec.pattern.match(code) and (not spec.own_prefix or code.startswith(prefecture_code)):
        return True
    prefecture = f" of prefecture {prefecture_code}" if spec.own_prefix else ""
    problems.add(path, f"{spec.columns[0]} is {code!r}", where=where, expected=f"{spec.what}{prefecture}")
    return False


def load_table(
    path: Path, spec: TableSpec, prefecture_code: str, known_codes: Iterable[str], problems: Problems
) -> list[AreaRow]:
    """The rows of one JMA area table; problems recorded (file, row, key, expectation)."""
    code_key, name_key = spec.columns[0], spec.columns[1]
    known = set(known_codes)
    rows: list[AreaRow] = []
    seen: dict[str, int] = {}
    for number, row in _rows(path, spec.columns, problems):
        code = row.get(code_key, "")
        where = f"row {number} {code_key}={code!r}"
        if not _code_ok(path, code, where, spec, prefecture_code, problems):
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


def load_area_table(
    path: Path, prefecture_code: str, known_codes: Iterable[str], problems: Problems, *, forecast: bool = False
) -> list[AreaRow]:
    """``jma_areas.csv`` (or, with ``forecast``, ``jma_forecast_areas.csv``)."""
    return load_table(path, FORECAST if forecast else MUNICIPAL, prefecture_code, known_codes, problems)


def load_hierarchy(path: Path, prefecture_code: str, problems: Problems) -> list[HierarchyRow]:
    """``jma_forecast_hierarchy.csv``: each 市町村等 of the prefecture and its three areas above."""
    rows: list[HierarchyRow] = []
    seen: dict[str, int] = {}
    for number, row in _rows(path, HIERARCHY_COLUMNS, problems):
        code = row.get("jma_code", "")
        where = f"row {number} jma_code={code!r}"
        if not _code_ok(path, code, where, MUNICIPAL, prefecture_code, problems):
            continue
        bad = [
            k
            for k in ("group_code", "first_code", "pref_code")
            if not (_SIX.match(row.get(k, "")) and row[k][:2] == prefecture_code)
        ]
        if bad:
            problems.add(
                path,
                f"{', '.join(f'{k}={row.get(k)!r}' for k in bad)}",
                where=where,
                expected=f"6-digit 府県予報区・細分区域 codes of prefecture {prefecture_code}",
            )
            continue
        if code in seen or not row.get("source"):
            problem = f"duplicate jma_code {code} (first on row {seen.get(code)})" if code in seen else "no source"
            problems.add(path, problem, where=where, expected="one row per code, each with its source")
            continue
        seen[code] = number
        rows.append(
            HierarchyRow(
                code,
                row.get("jma_name", ""),
                row["group_code"],
                row.get("group_name", ""),
                row["first_code"],
                row.get("first_name", ""),
                row["pref_code"],
                row.get("pref_name", ""),
                row["source"],
            )
        )
    return rows


def rows_for_prefecture(path: Path, prefecture_code: str, *, forecast: bool = False) -> list[dict[str, str]]:
    """The reference table's rows of one prefecture, as CSV rows (for ``region init``)."""
    problems = Problems()
    columns = FORECAST_COLUMNS if forecast else MUNICIPAL_COLUMNS
    return [row for _, row in _rows(path, columns, problems) if row.get(columns[0], "").startswith(prefecture_code)]


def write_table(path: Path, columns: tuple[str, ...], rows: Iterable[dict[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_area_table(path: Path, rows: list[dict[str, str]], *, forecast: bool = False) -> None:
    write_table(path, FORECAST_COLUMNS if forecast else MUNICIPAL_COLUMNS, rows)
