"""``bosai region init-all``: a region pack for every prefecture of a folder of N03 files, from one national
station table.

Each N03 file (``*.geojson`` or ``*.geojson.gz``, the municipalities of one prefecture) becomes the pack
``<out>/<romaji>`` (``09`` → ``tochigi``, :data:`streams.packs.prefectures.PREFECTURES`), built by
:func:`streams.packs.region_init.build_pack` with the whole table: each pack keeps its own stations (inside its
municipalities, or placed by the nearest-municipality fallback when the prefecture outlines say the station is
its own), so every station of the table is kept by at most one pack. What no pack kept is reported by id.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from streams.kernel.errors import ConfigError
from streams.packs.prefectures import PREFECTURES, pack_name
from streams.packs.region_init import Built, _n03_features, _prefecture_of, build_pack, read_station_list
from streams.packs.region_pack import DEFAULT_NEAREST_M
from streams.platform.checks import Problems

Progress = Callable[[str], None]

PROVENANCE = """\
# Provenance of the {name} pack ({prefecture})

Built by `bosai region init-all` from:

- `municipalities.geojson` — {source}: municipality boundaries (行政区域) of {prefecture}, MLIT N03 as
  simplified by the public repository smartnews-smri/japan-topography (data/municipality/geojson/s0010).
  Required credit: 「国土数値情報（行政区域データ）（国土交通省）を加工して作成」.
- `stations.csv` — the AMeDAS stations of {prefecture} from {stations} (出典：気象庁ホームページ, JMA AMeDAS).
- `rules.yaml` — the default rule set (`regions/_template/rules.yaml`).
- `jma_*.csv` — JMA's area tables derived from the boundaries and the repo's reference data (each row names
  its source; 出典：気象庁).

Generated output: review it before shipping it as a pack of regions/.
"""


@dataclass(frozen=True)
class PackSummary:
    name: str
    prefecture_code: str
    prefecture_name: str
    municipalities: int
    stations: int
    by_fallback: int
    seconds: float


@dataclass
class NationalResult:
    packs: list[PackSummary] = field(default_factory=list)
    stations_in_table: int = 0
    nowhere: list[str] = field(default_factory=list)  # station ids no pack kept
    twice: list[str] = field(default_factory=list)  # station ids more than one pack kept (should be none)
    seconds: float = 0.0

    @property
    def kept(self) -> int:
        return sum(p.stations for p in self.packs)


def n03_files(n03_dir: Path) -> list[Path]:
    """The N03 files of a folder, by name."""
    found = sorted([*n03_dir.glob("N03*.geojson"), *n03_dir.glob("N03*.geojson.gz")])
    if not found:
        raise ConfigError(n03_dir, "no N03 files", expected="N03*.geojson or N03*.geojson.gz, one prefecture each")
    return found


def _prefecture_code(n03: Path) -> str:
    kept, _ = _n03_features(n03, Problems())
    code, _name = _prefecture_of(n03, kept)
    if code not in PREFECTURES:
        raise ConfigError(n03, f"prefecture code {code!r}", expected="a JIS X 0401 code, 01..47")
    return code


def init_all(
    n03_dir: Path,
    stations_csv: Path | None,
    out: Path,
    *,
    nearest_max_distance_m: float = DEFAULT_NEAREST_M,
    force: bool = False,
    sharing: str | None = None,
    progress: Progress = lambda _: None,
) -> NationalResult:
    """Build and check a pack per N03 file of ``n03_dir`` under ``out``; what each kept, and what none kept."""
    started = time.perf_counter()
    files = n03_files(n03_dir)
    codes = {path: _prefecture_code(path) for path in files}
    repeated = [code for code, n in Counter(codes.values()).items() if n > 1]
    if repeated:
        raise ConfigError(n03_dir, f"several files of prefecture(s) {sorted(repeated)}", expected="one per prefecture")
    rows = read_station_list(stations_csv, sharing=sharing) if stations_csv is not None else []
    result = NationalResult(stations_in_table=len(rows))
    kept_by: Counter[str] = Counter()
    out.mkdir(parents=True, exist_ok=True)
    for number, path in enumerate(sorted(files, key=lambda p: codes[p]), start=1):
        name = pack_name(codes[path])
        began = time.perf_counter()
        built: Built = build_pack(
            name,
            path,
            stations_csv,
            out / name,
            nearest_max_distance_m=nearest_max_distance_m,
            force=force,
            station_rows=rows,
        )
        pack = built.pack
        (out / name / "PROVENANCE.md").write_text(
            PROVENANCE.format(
                name=name,
                prefecture=pack.prefecture_name,
                source=path.name,
                stations=stations_csv.name if stations_csv is not None else "no station table",
            ),
            encoding="utf-8",
        )
        kept_by.update(list(pack.stations))
        summary = PackSummary(
            name,
            pack.prefecture_code,
            pack.prefecture_name,
            len(pack.municipalities),
            len(pack.stations),
            len(built.stations.by_fallback),
            time.perf_counter() - began,
        )
        result.packs.append(summary)
        progress(
            f"[{number}/{len(files)}] {out / name}: {pack.prefecture_name} {summary.municipalities} municipalities, "
            f"{summary.stations} stations ({summary.by_fallback} by nearest fallback) in {summary.seconds:.1f}s"
        )
    result.nowhere = sorted(r["station_id"] for r in rows if r["station_id"] not in kept_by)
    result.twice = sorted(sid for sid, n in kept_by.items() if n > 1)
    result.seconds = time.perf_counter() - started
    return result
